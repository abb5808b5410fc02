"""Why a connection failed, in one line: never a paramiko traceback, never a secret.

paramiko reports a failure by the step it was at (an "authentication" failure for a host that hung up,
"No existing session" for a key exchange that never came); the cause is named here, asking the server
again when only it can tell (a key accepted only with SHA-1 signatures).
"""

from __future__ import annotations

import time

import paramiko

from engine.errors import ConnectionFailed, HostKeyError
from engine.executors.knownhosts import KNOWN_HOSTS, known_hosts_name
from engine.executors.paramiko_private import Handshake, KeyQuery
from engine.executors.sshconfig import LEGACY_OPTION
from engine.executors.sshkeys import keys_tried, rsa_keys_offered
from engine.executors.sshsocket import dial, where
from engine.transports import SSHOptions, SSHTarget


def connection_error(
    target: SSHTarget,
    error: Exception,
    reached: Handshake,
    known_hosts: str,
    options: SSHOptions,
    direct: bool,
) -> Exception:
    """One line saying what went wrong; never a secret (none is known at this point anyway).

    Before the key exchange nothing about keys or users was asked: a failure there is the peer's silence,
    its reset or its hang-up, whatever step paramiko names ("No existing session" after a wait that ended).
    """
    if isinstance(error, paramiko.BadHostKeyException):
        known, offered = error.expected_key, error.key
        return HostKeyError(
            f"{target.name}: the host key of {where(target)} has CHANGED: known_hosts has {known.get_name()} "
            f"{known.fingerprint}, the host offered {offered.get_name()} {offered.fingerprint}. "
            "Refusing to connect (whatever --trust-new-host-keys says); if the change is expected, "
            f"remove the old entry: ssh-keygen -R '{known_hosts_name(target)}' -f {known_hosts}"
        )
    if not reached.keys_exchanged:
        return _handshake_error(target, error, reached, options)
    # "Invalid key": what paramiko leaves after a refused RSA key file (its retry of the file as another type)
    auth_failed = isinstance(error, paramiko.AuthenticationException) or str(error) in (
        "No existing session",
        "Invalid key",
    )
    if auth_failed and not target.legacy_rsa and direct and _accepts_only_sha1(target, options, known_hosts):
        return ConnectionFailed(
            f"{target.name}: authentication failed for {target.user}@{where(target)}: the server accepts this "
            "RSA key only with the legacy SHA-1 `ssh-rsa` signature (an old sshd, or PubkeyAcceptedAlgorithms "
            f"ssh-rsa there), which is not used unless allowed. To allow it for this host, add `{LEGACY_OPTION}` "
            f"under its Host in ~/.ssh/config (as for OpenSSH), or give the host an ed25519 or ECDSA key"
        )
    if auth_failed:
        # "No existing session": sshd hung up while we were still offering keys (MaxAuthTries).
        hung_up = (
            " (the host closed the connection: too many keys offered?)" if "session" in str(error) else ""
        )
        return ConnectionFailed(
            f"{target.name}: authentication failed for {target.user}@{where(target)}{hung_up}; keys tried: "
            f"{keys_tried(target)}. Give the right one with IdentityFile in ~/.ssh/config or the "
            "inventory's key_file"
        )
    return _transport_error(target, error)


def _handshake_error(
    target: SSHTarget, error: Exception, reached: Handshake, options: SSHOptions
) -> Exception:
    at = where(target)
    causes = (error, error.__context__)
    if any(isinstance(cause, ConnectionResetError) for cause in causes):
        before = "after its SSH banner" if reached.banner else "before any SSH banner"
        return ConnectionFailed(
            f"{target.name}: connection reset by {at} {before} (a firewall rejecting the connection, or a "
            "server refusing it: sshd's MaxStartups, TCP wrappers)"
        )
    if any(isinstance(cause, EOFError) for cause in causes) and not reached.banner:
        return ConnectionFailed(
            f"{target.name}: {at} closed the connection without sending an SSH banner: not an SSH server "
            "there, or one refusing connections (sshd's MaxStartups, TCP wrappers)"
        )
    if reached.banner and (reached.timed_out or str(error) == "No existing session"):
        return ConnectionFailed(
            f"{target.name}: {at} sent its SSH banner ({reached.banner}) but no key exchange followed within "
            f"{options.connect_timeout:g}s: a server stuck or overloaded"
        )
    if reached.banner and any(isinstance(cause, EOFError) for cause in causes):
        return ConnectionFailed(
            f"{target.name}: {at} closed the connection after its SSH banner ({reached.banner}), before the "
            "key exchange: sshd refusing us (MaxStartups, a key exchange it cannot agree to)"
        )
    if not reached.banner and (str(error) == "No existing session" or "protocol banner" in str(error)):
        return ConnectionFailed(
            f"{target.name}: {at} accepted the connection but sent no SSH banner within "
            f"{options.banner_timeout:g}s (nothing, or something that is not SSH): not an SSH server there, "
            "or one too busy to answer (MaxStartups)"
        )
    return _transport_error(target, error)


def _transport_error(target: SSHTarget, error: Exception) -> Exception:
    at = where(target)
    if isinstance(error, (paramiko.ssh_exception.NoValidConnectionsError, ConnectionRefusedError)):
        return ConnectionFailed(f"{target.name}: connection refused by {at}")
    if isinstance(error, TimeoutError):
        return ConnectionFailed(f"{target.name}: timed out connecting to {at}")
    if isinstance(error, OSError):
        return ConnectionFailed(f"{target.name}: cannot connect to {at}: {error.strerror or error}")
    if isinstance(error, (paramiko.SSHException, EOFError)):
        said = str(error).splitlines()[0] if str(error) else "the connection closed"
        return ConnectionFailed(f"{target.name}: SSH failed with {at}: {said}")
    return error


def _accepts_only_sha1(target: SSHTarget, options: SSHOptions, known_hosts: str) -> bool:
    """After an authentication failure: does the server accept one of the RSA keys we offered, but only with
    the SHA-1 `ssh-rsa` signature? Asked on a connection of its own, signing nothing and sending nothing but
    public keys already offered (`KeyQuery`): `rsa-sha2-256` refused and `ssh-rsa` accepted proves it.

    The host must prove it is the one in known_hosts before the user name or a key is sent, as on the
    connection that failed; the queries share one deadline, and the first one left unanswered ends them
    (a late answer would otherwise be read as the answer to the next query)."""
    keys = rsa_keys_offered(target)
    if not keys or target.user is None:
        return False
    deadline = time.monotonic() + options.auth_timeout
    try:
        sock = dial(target, options)
    except OSError:
        return False
    transport = paramiko.Transport(sock)
    try:
        transport.start_client(timeout=options.connect_timeout)
        offered = transport.get_remote_server_key()
        if KNOWN_HOSTS.keys(known_hosts, known_hosts_name(target)).get(offered.get_name()) != offered:
            return False
        try:
            transport.auth_none(target.user)
        except paramiko.BadAuthenticationType:
            pass  # the expected answer: the user-auth service is now open for our queries
        query = KeyQuery(transport)
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
