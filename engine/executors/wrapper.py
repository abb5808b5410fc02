"""The small POSIX sh wrapper every remote command runs under, and what the engine sends it.

It (1) reads the command and its environment, secrets included, from the channel's stdin — never an
environment value from its argument list, which `ps` shows to everyone on the host — (2) starts the script in
a process group of its own, (3) reports that group's id as the first line of stderr, (4) keeps the
script's output and exit status on the node (`engine.executors.nodefiles`) so the script never writes to
the session itself: a killed engine or a dropped connection cannot give it a SIGPIPE, and a resume learns
how it ended.

The own process group is usually the one sshd made: sshd starts every session command in a new session
(setsid(2)) and the login shell `exec`s the wrapper's `sh`, which then leads its group and runs the script as
its child, waiting for it to write the exit status (no `setsid`, no second `sh`: two process spawns less per
command than the other ways). Where it does not lead its group (a login shell that forked), `setsid` starts a
leader `sh` and the wrapper waits above it; without `setsid` (macOS, no /proc either) the wrapper execs in
place, in the session sshd made; there the output still survives the session, but no status file is written
(nothing outlives the exec to write it). `set -m` is no fallback: dash refuses job control without a
terminal, and we never ask for a pty. Where the wrapper leads the group, the script's `$$` is not the group
id (its parent's is; `kill 0` still reaches the whole group).

What sshd starts is the same for every command, so a host's next session can be opened and its wrapper
started ahead of its command, while the run waits on something else (`engine.executors.sshspare`): the
session, the login shell, the FIFOs and the `tee`s are then paid for before the step, not during it.
"""

from __future__ import annotations

import base64
import shlex
from collections.abc import Mapping

from engine.executors.nodefiles import CAP, DIR

# The wrapper comes in two parts: what sshd's login shell runs (`command()`: the same for every command, so
# a session can be opened and the wrapper started before the command is known, a spare, while the machine
# has nothing else to do), and what the engine then sends on the channel (`job()` and `environment()`):
# the marker, the shell, the node files to delete, the working directory and the script (each of those two
# as a count of lines, then the lines: any text, read by builtins alone, and joined 64 lines at a time, as
# a shell's appending copies the whole string), then the environment, then the go. `read` and `printf` are
# builtins, so no value of the environment reaches an argv (the script does, as the argument of its shell's
# `-ec`, as it always did). One line, no `!`: any Bourne-like login shell can pass it on. The line break
# that joins the lines again is the last of IFS, which every shell sets to space, tab, line break when it
# starts (`read` strips line breaks, and a command substitution would cost a fork).
# Three ways to a group of its own. (1) This shell already leads one (/proc/$$/stat's field 5 is $$): sshd
# starts every session command in a new session (setsid(2)) and the login shell `exec`s us, so that is the
# usual case; `_START` runs right here (`eval`, mode "w"): no `setsid`, no second `sh`, two process spawns
# less per command. (2) It does not (a login shell that forked, an odd sshd), and `setsid` exists: the group
# leader is a `setsid sh`, and once the group has ended this shell writes the exit status beside its output
# files, if the script started (its FIFO is there): read by a resume. (3) No `setsid` (macOS, no /proc
# either): exec in place, in the session sshd made; no status file (nothing outlives the exec to write it).
# The channel stays on fd 3 (an asynchronous list's stdin is /dev/null, so it is saved before); the script
# itself reads /dev/null.
_WRAPPER = (
    f"_rb_d=${{HOME:-/tmp}}/{DIR}; exec 3<&0;"
    " read -r _rb_x _rb_x _rb_x _rb_x _rb_g _rb_x 2>/dev/null </proc/$$/stat || _rb_g=;"
    ' if [ "$_rb_g" = "$$" ]; then _rb_s=$1; set -- "$_rb_d" w; eval "$_rb_s";'
    " elif command -v setsid >/dev/null 2>&1;"
    ' then setsid sh -c "$1" sh "$_rb_d" "" </dev/null & _rb_p=$!;'
    " read -r" + " _rb_x" * 21 + " _rb_t _rb_x 2>/dev/null </proc/$_rb_p/stat || _rb_t=;"
    ' wait "$_rb_p" 2>/dev/null; _rb_c=$?; _rb_f=$_rb_d/$_rb_p-$_rb_t;'
    ' if [ -p "$_rb_f.o" ]; then umask 077; { printf "%s\\n" "$_rb_c" >"$_rb_f.status"; } 2>/dev/null; fi;'
    ' exit "$_rb_c";'
    ' else exec sh -c "$1" sh "$_rb_d" "" </dev/null; fi'
)
# Runs as the group leader ($1 the files' directory, $2 "w" when it must also wait for the script and write
# its exit status). First what no command needs to be known for: the files, two FIFOs and a
# `tee` on each (in the group: a kill stops them too), copying to the channel and to a file of at most `CAP`
# bytes; SIGPIPE ignored, a `tee` whose channel is gone goes on with its file. The leader opens each FIFO for
# writing as soon as its `tee` opened it for reading (so no byte is written before a reader is there). Where
# they cannot be set up (no `mkfifo`, no writable directory), the script runs on the channel. Then the job
# from fd 3 and the environment (ending with an empty line; stdin ending before it, the connection dropped
# or a spare never used, exits 125 with its files removed: never a script run with half its environment,
# secrets missing); `cd`; the group id ($$) told on stderr, with the leader's start time where /proc has it
# (field 22, clock ticks after boot; the command name here is "sh", no spaces: a resume tells the journaled
# group from a later one that reuses the id; read with the `read` builtin, not `cut`: every command pays
# this). Then it waits for the engine's go (a line on fd 3), which it sends once the group is in the journal:
# an engine killed before that leaves a script that never started (exit 125 at the end of input), so a
# resume may run the step again; after it, the resume knows which group to look for. No go: the `tee`s are
# killed and the FIFOs removed, so no status is written for a script that never started. After the go, the
# FIFOs are the script's stdout and stderr, and once it and all it started have closed them, the `tee`s read
# their end. The leader execs the script, or (mode "w") runs it as its child: the leader is in the group,
# so it catches the signals a group kill sends (a caught signal is the default again in the child). A `wait`
# a caught signal cut short says 128+signal, so after a signal came and while the status is above 128, the
# leader waits again: the shell hands the script's own status then, even where it already reaped the child
# (dash and bash keep it); 127 means there is none to give (the script was waited for already: the status
# stays). The one status read wrongly: a script that exits 127 just after a cut-short `wait` reads as
# 128+signal. It writes the exit status beside the output and exits with it, as the outer wrapper of (2)
# does. A SIGKILL of the group takes the leader too: no exit status then, on the channel or in a file (a run
# that kills ignores both).
_TEE = f'trap "" PIPE XFSZ; umask 077; ulimit -f {CAP // 512}; exec tee -- '
_TRAPPED = "HUP INT QUIT PIPE ALRM TERM USR1 USR2"
_START = (
    "_rb_b=${IFS#??}; read -r" + " _rb_x" * 21 + " _rb_t _rb_x 2>/dev/null </proc/$$/stat || _rb_t=;"
    " _rb_f=$1/$$-$_rb_t;"
    ' if [ -n "$1" ] && command -v tee >/dev/null 2>&1 && { [ -d "$1" ] || mkdir -p -m 700 "$1"; } 2>/dev/null'
    ' && mkfifo -m 600 "$_rb_f.o" "$_rb_f.e" 2>/dev/null; then'
    f' ({_TEE}"$_rb_f.out" <"$_rb_f.o" 3<&-) 2>/dev/null & _rb_1=$!;'
    f' ({_TEE}"$_rb_f.err" <"$_rb_f.e" >&4 3<&- 4>&-) 4>&2 2>/dev/null & _rb_2=$!;'
    ' exec 5>"$_rb_f.o" 6>"$_rb_f.e"; else _rb_f=; fi;'
    ' _rb_z() { [ -z "$_rb_f" ] || { kill "$_rb_1" "$_rb_2"; rm -f "$_rb_f.o" "$_rb_f.e";'
    ' [ -z "$2" ] || rm -f "$_rb_f.out" "$_rb_f.err"; } 2>/dev/null; exit "$1"; };'
    " _rb_r() { _rb_v=; _rb_c=; _rb_i=0; IFS= read -r _rb_j <&3 || return 1;"
    ' while [ "$_rb_i" -lt "$_rb_j" ]; do IFS= read -r _rb_l <&3 || return 1;'
    ' if [ "$_rb_i" = 0 ]; then _rb_c=$_rb_l; else _rb_c=$_rb_c$_rb_b$_rb_l; fi; _rb_i=$((_rb_i + 1));'
    " [ $((_rb_i % 64)) -ne 0 ] || { _rb_v=$_rb_v$_rb_c; _rb_c=; }; done; _rb_v=$_rb_v$_rb_c; };"
    " IFS= read -r _rb_m <&3 && IFS= read -r _rb_h <&3 && IFS= read -r _rb_x <&3 || _rb_z 125 all;"
    ' [ -z "$_rb_x" ] || (cd -- "$1" && exec rm -f -- $_rb_x) </dev/null >/dev/null 2>&1 3<&- 5>&- 6>&- &'
    " _rb_r && _rb_w=$_rb_v && _rb_r || _rb_z 125 all; _rb_s=$_rb_v;"
    ' while IFS= read -r _rb_l <&3 || _rb_z 125 all; [ -n "$_rb_l" ]; do case ${_rb_l%%=*} in'
    ' *" "*) _rb_v=$(printf "%s\\n" "${_rb_l#* }" | base64 -d && printf x) || _rb_z 125 all;'
    ' export "${_rb_l%% *}=${_rb_v%x}";; *) export "$_rb_l";; esac; done;'
    ' if [ -n "$_rb_w" ]; then cd -- "$_rb_w" || _rb_z 1 all; fi;'
    ' printf "%s %s %s\\n" "$_rb_m" "$$" "$_rb_t" >&2;'
    " read -r _rb_go <&3 || _rb_z 125; exec 3<&-;"
    ' [ -z "$_rb_f" ] || exec >&5 2>&6 5>&- 6>&-; [ -n "$2" ] || exec "$_rb_h" -ec "$_rb_s";'
    f' trap "_rb_k=1" {_TRAPPED}; "$_rb_h" -ec "$_rb_s" </dev/null & _rb_p=$!;'
    ' _rb_k=; wait "$_rb_p" 2>/dev/null; _rb_c=$?;'
    ' while [ -n "$_rb_k" ] && [ "$_rb_c" -gt 128 ]; do _rb_k=; wait "$_rb_p" 2>/dev/null; _rb_n=$?;'
    ' [ "$_rb_n" = 127 ] && break; _rb_c=$_rb_n; done;'
    ' [ -z "$_rb_f" ] || { umask 077; printf "%s\\n" "$_rb_c" >"$_rb_f.status"; } 2>/dev/null; exit "$_rb_c"'
)


def command() -> str:
    """What sshd hands to the login shell: `exec sh -c <wrapper>`, the same for every command (a spare
    session runs it before its command is known); the command itself follows on the channel (`job`)."""
    return f"exec sh -c {shlex.quote(_WRAPPER)} runbook {shlex.quote(_START)}"


def job(marker: str, shell: str, cwd: str | None, script: str, delete: list[str] | None = None) -> bytes:
    """The command, sent on the channel ahead of its environment: the marker of its group line, its shell,
    node files (plain names, `nodefiles.names`) to remove in passing, then the working directory and the
    script, each as its number of lines and the lines (exactly: joined again with line breaks)."""
    words = " ".join(delete or ())
    if any("\n" in value for value in (marker, shell, words)):
        raise ValueError("a marker, shell or node file name has no line break")
    lines = [marker, shell, words, *_lines(cwd or ""), *_lines(script)]
    return ("\n".join(lines) + "\n").encode()


def _lines(text: str) -> list[str]:
    parts = text.split("\n") if text else []
    return [str(len(parts)), *parts]


def environment(environ: Mapping[str, str]) -> bytes:
    """One line per variable, then an empty line: `NAME=value` as it is (read and exported by builtins
    alone), or `NAME base64(value)` for a value with a line break (decoded by `base64`: a fork and an exec
    on the host, per variable and command, that most values do without)."""
    lines = [
        f"{name} {base64.b64encode(value.encode()).decode()}\n"
        if "\n" in value or "\r" in value
        else f"{name}={value}\n"
        for name, value in environ.items()
    ]
    return ("".join(lines) + "\n").encode()
