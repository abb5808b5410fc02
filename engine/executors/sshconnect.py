"""Opening the one SSH connection per host: ~/.ssh/config, known_hosts, authentication, ProxyJump.

Imports paramiko (0.2 s), so nothing on the `runbook validate` path may import this module; the package
reaches it lazily through `engine.executors.ssh_executor()`.
"""

from __future__ import annotations

import getpass
import glob
import io
import logging
import os
import queue
import re
import socket
import threading
import time
from dataclasses import replace
from typing import Any

import paramiko
from cryptography.hazmat.primitives import hashes
from paramiko.auth_handler import AuthHandler
from paramiko.common import MSG_USERAUTH_FAILURE, MSG_USERAUTH_PK_OK, cMSG_USERAUTH_REQUEST

from engine.errors import ConnectionFailed, HostKeyError
from engine.transports import (
    DESTINATION_FORMS,
    Agent,
    SSHOptions,
    SSHTarget,
    describe_auth,
    expand_home,
    parse_destination,
)

MAX_JUMPS = 5
_known_hosts_lock = threading.Lock()
_known_hosts_read_lock = threading.Lock()
_known_hosts_read: dict[str, tuple[tuple[int, int], paramiko.HostKeys]] = {}
_INCLUDE = re.compile(r"^\s*include\s*=?\s*(?P<paths>.+?)\s*$", re.I)
_BLOCK = re.compile(r"^\s*(host|match)\b", re.I)
_MAX_INCLUDE_DEPTH = 16  # OpenSSH's own limit (READCONF_MAX_DEPTH)
_SHA2_RSA = ["rsa-sha2-512", "rsa-sha2-256"]
_LEGACY_OPTION = "PubkeyAcceptedAlgorithms +ssh-rsa"
_IDLE_POLL = 1.0  # seconds between a connected transport thread's checks for being closed (paramiko: 0.1)
_keys_read_lock = threading.Lock()
_keys_read: dict[tuple[str, str], tuple[tuple[int, int, int, int], paramiko.PKey]] = {}
_DEFAULT_KEYS = ("id_rsa", "id_ecdsa", "id_ecdsa_sk", "id_ed25519", "id_ed25519_sk", "id_dsa")

# paramiko logs its transport thread's failures with a traceback; with no handler configured Python's
# last-resort handler would print them raw on the terminal (a garbage banner → a paramiko traceback). The
# same failure reaches us as an exception, which we report in one line: paramiko's own log goes nowhere.
logging.getLogger("paramiko").addHandler(logging.NullHandler())


def resolve(target: SSHTarget, options: SSHOptions) -> SSHTarget:
    """Fill what the runbook left open from ~/.ssh/config, as OpenSSH does.

    The runbook plays the part of OpenSSH's command line: an explicit user, port or key wins, the config
    fills the rest, and the first value the config gives for a key wins. A config IdentityFile acts like
    an explicit key (only that key is offered); the first one that exists is used.
    """
    path = os.path.expanduser(options.ssh_config)
    found = _load_config(target.name, path).lookup(target.name)
    if found.get("proxycommand", "none").lower() != "none" and not found.get("proxyjump"):
        raise ConnectionFailed(f"{target.name}: ProxyCommand in {path} is not supported (ProxyJump is)")
    jump = target.proxy_jump or (None if target.jump else found.get("proxyjump"))
    identity = None
    if target.offers_default_keys:
        identity = next((key for key in found.get("identityfile", []) if os.path.exists(key)), None)
    try:
        port = target.port or int(found.get("port", 22))
    except ValueError:
        raise ConnectionFailed(f"{target.name}: bad Port in {path}: {found.get('port')!r}") from None
    alive = _alive_settings(target.name, path, found)
    accepted = found.get("pubkeyacceptedalgorithms") or found.get("pubkeyacceptedkeytypes") or ""
    return replace(
        target,
        hostname=target.hostname or found.get("hostname", target.name),
        user=target.user or found.get("user") or getpass.getuser(),
        port=port,
        key_file=expand_home(target.key_file) if target.key_file else identity,
        proxy_jump=None if jump is None or jump.lower() == "none" else jump,
        alive_interval=target.alive_interval or alive[0],
        alive_count_max=target.alive_count_max or alive[1],
        legacy_rsa=target.legacy_rsa or _allows_ssh_rsa(accepted),
    )


def _allows_ssh_rsa(accepted: str) -> bool:
    """Whether OpenSSH's `PubkeyAcceptedAlgorithms` (or its old name `PubkeyAcceptedKeyTypes`) lets SHA-1
    `ssh-rsa` signatures in: `+ssh-rsa`, `^ssh-rsa`, or a list naming it (`-ssh-rsa` takes it out)."""
    return any(word.strip().lstrip("+^") == "ssh-rsa" for word in accepted.split(","))


def _alive_settings(name: str, path: str, found: paramiko.SSHConfigDict) -> tuple[float | None, int | None]:
    """`ServerAliveInterval` and `ServerAliveCountMax`: how soon a silent peer is declared dead."""
    try:
        interval = float(found["serveraliveinterval"]) if "serveraliveinterval" in found else None
        count = int(found["serveralivecountmax"]) if "serveralivecountmax" in found else None
    except ValueError:
        raise ConnectionFailed(f"{name}: bad ServerAlive* setting in {path}") from None
    return (interval if interval and interval > 0 else None), (count if count and count > 0 else None)


def open_chain(target: SSHTarget, options: SSHOptions, depth: int = 0) -> list[paramiko.SSHClient]:
    """Connect to `target` (resolved), through its ProxyJump hosts if any; the last client is the target's.

    Like `ssh -J a,b`: connect to a (with a's own config, ProxyJump included), then to b through a
    direct-tcpip channel of a's transport, then to the target through b. Every hop's host key is checked.
    """
    if target.jump:
        hops = [resolve(hop, options) for hop in target.jump]
    elif target.proxy_jump is not None:
        hops = [resolve(_parse_jump(spec, target.name), options) for spec in target.proxy_jump.split(",")]
    else:
        return [_connect(target, options, None)]
    if depth >= MAX_JUMPS:
        raise ConnectionFailed(f"{target.name}: ProxyJump nests more than {MAX_JUMPS} hosts deep")
    chain = open_chain(hops[0], options, depth + 1)
    try:
        for hop in [*hops[1:], replace(target, proxy_jump=None, jump=())]:
            chain.append(_connect(hop, options, _tunnel(chain[-1], hop, options)))
    except BaseException:
        close_chain(chain)
        raise
    return chain


def close_chain(chain: list[paramiko.SSHClient]) -> None:
    for client in reversed(chain):
        client.close()


def _load_config(name: str, path: str) -> paramiko.SSHConfig:
    if not os.path.exists(path):
        return paramiko.SSHConfig()
    try:
        return paramiko.SSHConfig.from_text(_with_includes(path, 0))
    except (OSError, UnicodeDecodeError, paramiko.ConfigParseError) as error:
        raise ConnectionFailed(f"{name}: cannot read {path}: {error}") from None


def _with_includes(path: str, depth: int) -> str:
    """The config's text with every `Include` replaced by the files it names, as OpenSSH reads it (paramiko
    does not): globs, several paths per line, `~`, and relative paths taken from ~/.ssh. An included file
    may open `Host` blocks of its own; the block the `Include` stood in is reopened after it."""
    if depth > _MAX_INCLUDE_DEPTH:
        raise paramiko.ConfigParseError(f"Include nests deeper than {_MAX_INCLUDE_DEPTH} files (a loop?)")
    lines: list[str] = []
    block = "Host *"
    with open(path, encoding="utf-8") as file:
        for line in file:
            if _BLOCK.match(line):
                block = line.strip()
            match = _INCLUDE.match(line)
            if match is None:
                lines.append(line.rstrip("\n"))
                continue
            for pattern in match["paths"].split():
                pattern = os.path.expanduser(pattern.strip('"'))
                if not os.path.isabs(pattern):
                    pattern = os.path.join(os.path.expanduser("~/.ssh"), pattern)
                for included in sorted(glob.glob(pattern)):
                    if os.path.isfile(included):
                        lines += [_with_includes(included, depth + 1), block]
    return "\n".join(lines) + "\n"


def _parse_jump(spec: str, name: str) -> SSHTarget:
    found = parse_destination(spec)
    if found is None:
        raise ConnectionFailed(f"{name}: cannot parse ProxyJump host {spec!r}: expected {DESTINATION_FORMS}")
    return SSHTarget(name=found.host, user=found.user, port=found.port)


def _tunnel(via: paramiko.SSHClient, hop: SSHTarget, options: SSHOptions) -> paramiko.Channel:
    transport = via.get_transport()
    assert transport is not None and hop.hostname is not None and hop.port is not None
    try:
        return transport.open_channel(
            "direct-tcpip", (hop.hostname, hop.port), ("127.0.0.1", 0), timeout=options.connect_timeout
        )
    except (paramiko.SSHException, OSError) as error:
        raise ConnectionFailed(f"{hop.name}: the jump host cannot reach {_where(hop)}: {error}") from None


def _connect(target: SSHTarget, options: SSHOptions, sock: paramiko.Channel | None) -> paramiko.SSHClient:
    """One authenticated client; the host key is checked before anything is sent to the host."""
    known_hosts = os.path.expanduser(options.known_hosts)
    client = paramiko.SSHClient()
    name = _known_hosts_name(target)
    try:
        known = _known_keys(known_hosts, name)
    except (OSError, paramiko.SSHException, ValueError) as error:
        raise ConnectionFailed(f"{target.name}: cannot read {known_hosts}: {error}") from None
    for (
        key_type,
        key,
    ) in known.items():  # paramiko checks them, and prefers their type, as it would the file's
        client.get_host_keys().add(name, key_type, key)
    client.set_missing_host_key_policy(_UnknownHostKey(target.name, known_hosts, options.trust_new_keys))
    auth = _auth(target)
    if target.legacy_rsa:  # the operator allowed SHA-1 for this host: RSA keys sign `ssh-rsa` only
        auth.update(transport_factory=_LegacyTransport, disabled_algorithms={"pubkeys": _SHA2_RSA})
    direct = sock is None
    try:
        client.connect(
            target.hostname or target.name,
            target.port or 22,
            username=target.user,
            timeout=options.connect_timeout,
            banner_timeout=options.banner_timeout,
            auth_timeout=options.auth_timeout,
            channel_timeout=options.connect_timeout,
            sock=sock or _dial(target, options),
            **auth,
        )
    except (paramiko.SSHException, OSError, EOFError, ValueError) as error:
        client.close()
        raise _connection_error(target, error, known_hosts, options, direct) from None
    except BaseException:  # our HostKeyError (from _UnknownHostKey), Ctrl-C: close, pass on as they are
        client.close()
        raise
    transport = client.get_transport()
    assert transport is not None
    # No `set_keepalive`: the heartbeat (heartbeat.py) already sends a request every interval, one that
    # expects an answer. The transport thread polls its socket every 0.1 s (paramiko's default) to notice
    # a close; with hundreds of hosts that is thousands of wake-ups a second, each taking the GIL from
    # whoever works. Data still wakes it at once; only noticing our own close may take up to `_IDLE_POLL`.
    transport.sock.settimeout(_IDLE_POLL)
    return client


class _PromptAcks(socket.socket):
    """A socket that acknowledges what it received at once (Linux's TCP_QUICKACK after every read).

    sshd sets TCP_NODELAY only for sessions with a terminal, so its small packets wait (Nagle) for our ACK
    of the one before, which Linux delays up to 40 ms: measured on loopback, the first session after login
    took 45 ms to open instead of 3 (sshd's post-login debug message is the unacknowledged one), and
    every such stall recurs wherever sshd sends two small packets in a row."""

    def recv(self, size: int, flags: int = 0) -> bytes:
        data = super().recv(size, flags)
        self.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        return data


def _dial(target: SSHTarget, options: SSHOptions) -> socket.socket:
    """The TCP connection, with Nagle off before the first packet (each exchange of the key exchange, the
    login and every command is a few small packets: Nagle + delayed ACK halved the login's speed) and
    prompt ACKs where the system has them."""
    sock = socket.create_connection(
        (target.hostname or target.name, target.port or 22), options.connect_timeout
    )
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if not hasattr(socket, "TCP_QUICKACK"):  # Linux only
        return sock
    timeout = sock.gettimeout()
    acking = _PromptAcks(fileno=sock.detach())
    acking.settimeout(timeout)
    return acking


def _connection_error(
    target: SSHTarget, error: Exception, known_hosts: str, options: SSHOptions, direct: bool
) -> Exception:
    """One line saying what went wrong; never a secret (none is known at this point anyway)."""
    where = _where(target)
    banner_timeout = options.banner_timeout
    if isinstance(error, paramiko.BadHostKeyException):
        known, offered = error.expected_key, error.key
        return HostKeyError(
            f"{target.name}: the host key of {where} has CHANGED: known_hosts has {known.get_name()} "
            f"{known.fingerprint}, the host offered {offered.get_name()} {offered.fingerprint}. "
            "Refusing to connect (whatever --trust-new-host-keys says); if the change is expected, "
            f"remove the old entry: ssh-keygen -R '{_known_hosts_name(target)}' -f {known_hosts}"
        )
    # "Invalid key": what paramiko leaves after a refused RSA key file (its retry of the file as another type)
    auth_failed = isinstance(error, paramiko.AuthenticationException) or str(error) in (
        "No existing session",
        "Invalid key",
    )
    if auth_failed and not target.legacy_rsa and direct and _accepts_only_sha1(target, options, known_hosts):
        return ConnectionFailed(
            f"{target.name}: authentication failed for {target.user}@{where}: the server accepts this RSA key "
            "only with the legacy SHA-1 `ssh-rsa` signature (an old sshd, or PubkeyAcceptedAlgorithms ssh-rsa "
            f"there), which is not used unless allowed. To allow it for this host, add `{_LEGACY_OPTION}` "
            f"under its Host in ~/.ssh/config (as for OpenSSH), or give the host an ed25519 or ECDSA key"
        )
    if auth_failed:
        # "No existing session": sshd hung up while we were still offering keys (MaxAuthTries).
        hung_up = (
            " (the host closed the connection: too many keys offered?)" if "session" in str(error) else ""
        )
        return ConnectionFailed(
            f"{target.name}: authentication failed for {target.user}@{where}{hung_up}; keys tried: "
            f"{_keys_tried(target)}. Give the right one with IdentityFile in ~/.ssh/config or the "
            "inventory's key_file"
        )
    if isinstance(error, paramiko.SSHException) and "protocol banner" in str(error):
        return ConnectionFailed(
            f"{target.name}: {where} accepted the connection but sent no SSH banner within "
            f"{banner_timeout:g}s (nothing, or something that is not SSH): not an SSH server there, or "
            "one too busy to answer (MaxStartups)"
        )
    if isinstance(error, (paramiko.ssh_exception.NoValidConnectionsError, ConnectionRefusedError)):
        return ConnectionFailed(f"{target.name}: connection refused by {where}")
    if isinstance(error, TimeoutError):
        return ConnectionFailed(f"{target.name}: timed out connecting to {where}")
    if isinstance(error, OSError):
        return ConnectionFailed(f"{target.name}: cannot connect to {where}: {error.strerror or error}")
    if isinstance(error, paramiko.SSHException):
        return ConnectionFailed(f"{target.name}: SSH failed with {where}: {str(error).splitlines()[0]}")
    return error


class _UnknownHostKey(paramiko.MissingHostKeyPolicy):
    """Unknown key: refuse with its fingerprint, or (trust_new_keys) accept it and append it to known_hosts."""

    def __init__(self, name: str, known_hosts: str, trust: bool) -> None:
        self._name, self._known_hosts, self._trust = name, known_hosts, trust

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        if not self._trust:
            raise HostKeyError(
                f"{self._name}: unknown host key for {hostname}: {key.get_name()} {key.fingerprint}; "
                f"check it, then rerun with --trust-new-host-keys to accept it and add it to {self._known_hosts}"
            )
        line = f"{hostname} {key.get_name()} {key.get_base64()}\n"
        with _known_hosts_lock:  # several hosts may be trusted at once by the parallel preflight
            os.makedirs(os.path.dirname(self._known_hosts) or ".", mode=0o700, exist_ok=True)
            fd = os.open(self._known_hosts, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a") as file:
                if file.tell() > 0 and not _ends_with_newline(self._known_hosts):
                    file.write("\n")
                file.write(line)


def _known_keys(path: str, name: str) -> dict[str, paramiko.PKey]:
    """The keys known_hosts has for `name`, from one reading of the file per process (read again only when
    it changes, as when a key is trusted): `SSHClient.load_host_keys` would parse the whole file, decoding
    every key, for each connection — 250 hosts, 250 × 250 keys, one thread at a time."""
    with _known_hosts_read_lock:
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            return {}
        stamp = (stat.st_mtime_ns, stat.st_size)
        cached = _known_hosts_read.get(path)
        if cached is None or cached[0] != stamp:
            keys = paramiko.HostKeys()
            keys.load(path)
            cached = _known_hosts_read[path] = (stamp, keys)
    found = cached[1].lookup(name)
    return dict(found) if found else {}


def _ends_with_newline(path: str) -> bool:
    with open(path, "rb") as file:
        file.seek(-1, os.SEEK_END)
        return file.read(1) == b"\n"


def _known_hosts_name(target: SSHTarget) -> str:
    host = target.hostname or target.name
    return host if target.port in (None, 22) else f"[{host}]:{target.port}"


def _where(target: SSHTarget) -> str:
    return f"{target.hostname or target.name}:{target.port or 22}"


def _auth(target: SSHTarget) -> dict[str, Any]:
    """paramiko's authentication arguments: the key (inline ones parsed in memory, never written anywhere),
    its certificate, and whether the agent and ~/.ssh/id_* are offered."""
    if target.agent is Agent.ONLY:
        if not os.environ.get("SSH_AUTH_SOCK"):
            raise ConnectionFailed(
                f"{target.name}: only the SSH agent may be used, but SSH_AUTH_SOCK is not set"
            )
        return {"allow_agent": True, "look_for_keys": False}
    auth: dict[str, Any] = {"allow_agent": target.offers_agent, "look_for_keys": target.offers_default_keys}
    if target.key is not None:
        auth["pkey"] = _certified(target, _legacy(target, _inline_key(target)))
    elif target.key_file is not None:
        if not os.path.isfile(target.key_file):
            raise ConnectionFailed(f"{target.name}: key file {target.key_file} not found")
        if target.legacy_rsa:  # loaded here: paramiko's own loading makes keys that cannot sign SHA-1
            auth["pkey"] = _certified(target, _legacy(target, _key_file(target, target.key_file)))
        elif target.cert is None and target.cert_file is None:
            auth["pkey"] = _key_file_once(target, target.key_file)
        else:
            auth["pkey"] = _certified(target, _key_file(target, target.key_file))
    elif target.legacy_rsa:  # paramiko would load ~/.ssh/id_rsa as a key that cannot sign SHA-1
        auth["look_for_keys"] = False
        default = os.path.expanduser("~/.ssh/id_rsa")
        if os.path.isfile(default):
            auth["pkey"] = _legacy(target, _key_file(target, default))
    return auth


class _LegacyRSAKey(paramiko.RSAKey):
    """An RSA key that can also sign with SHA-1 (`ssh-rsa`), which paramiko no longer offers; used only for
    a host whose ~/.ssh/config allows it (`PubkeyAcceptedAlgorithms +ssh-rsa`)."""

    HASHES = {**paramiko.RSAKey.HASHES, "ssh-rsa": hashes.SHA1}  # type: ignore[misc]  # noqa: RUF012


class _LegacyTransport(paramiko.Transport):
    """A transport that may pick `ssh-rsa` for public-key authentication (paramiko's list no longer has it)."""

    _preferred_pubkeys = (*paramiko.Transport._preferred_pubkeys, "ssh-rsa")  # type: ignore[attr-defined]


def _legacy(target: SSHTarget, key: paramiko.PKey) -> paramiko.PKey:
    """`key`, able to sign `ssh-rsa` when the host allows SHA-1 and it is an RSA key."""
    if target.legacy_rsa and isinstance(key, paramiko.RSAKey) and not isinstance(key, _LegacyRSAKey):
        return _LegacyRSAKey(key=key.key)
    return key


def _rsa_keys_offered(target: SSHTarget) -> list[paramiko.PKey]:
    """The RSA public keys a connection to `target` offered: its key (inline or file), the agent's, or
    ~/.ssh/id_rsa when no key is given."""
    keys: list[paramiko.PKey] = []
    try:
        if target.key is not None:
            keys.append(_inline_key(target))
        elif target.key_file is not None:
            keys.append(_key_file(target, target.key_file))
        elif target.offers_default_keys and os.path.isfile(path := os.path.expanduser("~/.ssh/id_rsa")):
            keys.append(_key_file(target, path))
    except ConnectionFailed:
        pass
    if target.offers_agent:
        try:
            keys += list(paramiko.Agent().get_keys())
        except (paramiko.SSHException, OSError):
            pass
    return [key for key in keys if key.get_name() == "ssh-rsa"]


class _KeyQuery(AuthHandler):
    """Asks the server whether it would accept a public key with a given signature algorithm, signing
    nothing: RFC 4252's query (a publickey request without a signature), answered PK_OK or FAILURE."""

    def __init__(self, transport: paramiko.Transport) -> None:
        super().__init__(transport)
        self.answers: queue.Queue[bool] = queue.Queue()

    @property
    def _client_handler_table(self) -> dict[int, Any]:
        table: dict[int, Any] = dict(super()._client_handler_table)  # type: ignore[misc]
        table[MSG_USERAUTH_PK_OK] = lambda message: self.answers.put(True)
        table[MSG_USERAUTH_FAILURE] = lambda message: self.answers.put(False)
        return table

    def accepts(self, user: str, algorithm: str, key: paramiko.PKey, timeout: float) -> bool | None:
        message = paramiko.Message()
        message.add_byte(cMSG_USERAUTH_REQUEST)
        for text in (user, "ssh-connection", "publickey"):
            message.add_string(text)
        message.add_boolean(False)
        message.add_string(algorithm)
        message.add_string(key.asbytes())
        self.transport._send_message(message)  # type: ignore[attr-defined]
        try:
            return self.answers.get(timeout=timeout)
        except queue.Empty:
            return None


def _accepts_only_sha1(target: SSHTarget, options: SSHOptions, known_hosts: str) -> bool:
    """After an authentication failure: does the server accept one of the RSA keys we offered, but only with
    the SHA-1 `ssh-rsa` signature? Asked on a connection of its own, signing nothing and sending nothing but
    public keys already offered (`_KeyQuery`): `rsa-sha2-256` refused and `ssh-rsa` accepted proves it.

    The host must prove it is the one in known_hosts before the user name or a key is sent, as on the
    connection that failed; the queries share one deadline, and the first one left unanswered ends them
    (a late answer would otherwise be read as the answer to the next query)."""
    keys = _rsa_keys_offered(target)
    if not keys or target.user is None:
        return False
    deadline = time.monotonic() + options.auth_timeout
    try:
        sock = _dial(target, options)
    except OSError:
        return False
    transport = paramiko.Transport(sock)
    try:
        transport.start_client(timeout=options.connect_timeout)
        offered = transport.get_remote_server_key()
        if _known_keys(known_hosts, _known_hosts_name(target)).get(offered.get_name()) != offered:
            return False
        try:
            transport.auth_none(target.user)
        except paramiko.BadAuthenticationType:
            pass  # the expected answer: the user-auth service is now open for our queries
        query = _KeyQuery(transport)
        transport.auth_handler = query
        for key in keys:
            modern = query.accepts(target.user, "rsa-sha2-256", key, max(0.0, deadline - time.monotonic()))
            if modern is None:
                return False
            if modern:
                continue
            legacy = query.accepts(target.user, "ssh-rsa", key, max(0.0, deadline - time.monotonic()))
            if legacy is None:
                return False
            if legacy:
                return True
        return False
    except (paramiko.SSHException, OSError, EOFError):
        return False
    finally:
        transport.close()


_KEY_TYPES: tuple[type[paramiko.PKey], ...] = (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey)


def _inline_key(target: SSHTarget) -> paramiko.PKey:
    """The inline key, parsed from memory; an error never quotes it."""
    for kind in _KEY_TYPES:
        try:
            return kind.from_private_key(io.StringIO(target.key or ""))
        except paramiko.PasswordRequiredException:
            raise ConnectionFailed(
                f"{target.name}: the inline key is encrypted; load it into ssh-agent and use the agent instead"
            ) from None
        except (paramiko.SSHException, ValueError):
            continue
    raise ConnectionFailed(
        f"{target.name}: the inline key is not an unencrypted ed25519, ECDSA or RSA private key"
    )


def _key_file(target: SSHTarget, path: str) -> paramiko.PKey:
    try:
        return paramiko.PKey.from_path(path)
    except paramiko.PasswordRequiredException:
        raise ConnectionFailed(
            f"{target.name}: key file {path} is encrypted; load it into ssh-agent and use the agent instead"
        ) from None
    except (paramiko.SSHException, OSError, ValueError) as error:
        raise ConnectionFailed(f"{target.name}: cannot read key file {path}: {error}") from None


def _key_file_once(target: SSHTarget, path: str) -> paramiko.PKey:
    """The key in `path` with `<path>-cert.pub` attached when that exists (as ssh and paramiko's
    `key_filename` do), read once per process while both files stay as they are: 250 hosts sharing one
    key file would otherwise parse it 250 times (paramiko tries each key type on the file in turn)."""
    cert = f"{path}-cert.pub"

    def stamp(name: str) -> tuple[int, int]:
        try:
            stat = os.stat(name)
        except FileNotFoundError:
            return (-1, -1)
        return (stat.st_mtime_ns, stat.st_size)

    with _keys_read_lock:
        now = (*stamp(path), *stamp(cert))
        cached = _keys_read.get((path, cert))
        if cached is not None and cached[0] == now:
            return cached[1]
        key = _key_file(target, path)
        if now[2] >= 0:
            try:
                key.load_certificate(cert)
            except (paramiko.SSHException, OSError, ValueError) as error:
                raise ConnectionFailed(
                    f"{target.name}: certificate {cert} does not fit the key: {error}"
                ) from None
        _keys_read[(path, cert)] = (now, key)
        return key


def _certified(target: SSHTarget, key: paramiko.PKey) -> paramiko.PKey:
    """`key` with its certificate (inline text or a file) attached, when one is given."""
    try:
        if target.cert is not None:
            key.load_certificate(target.cert.strip())
        elif target.cert_file is not None:
            key.load_certificate(target.cert_file)
    except (paramiko.SSHException, OSError, ValueError) as error:
        where = "the inline certificate" if target.cert is not None else f"certificate {target.cert_file}"
        raise ConnectionFailed(f"{target.name}: {where} does not fit the key: {error}") from None
    return key


def _keys_tried(target: SSHTarget) -> str:
    """What `connect` offered (`describe_auth`), with the agent's keys and the default key files named."""
    named = []
    if target.offers_agent:
        try:
            named += [f"agent {key.get_name()} {key.fingerprint}" for key in paramiko.Agent().get_keys()]
        except (paramiko.SSHException, OSError):
            pass
    if target.offers_default_keys:
        named += [p for name in _DEFAULT_KEYS if os.path.exists(p := os.path.expanduser(f"~/.ssh/{name}"))]
    return describe_auth(target) + (f" ({', '.join(named)})" if named else "")
