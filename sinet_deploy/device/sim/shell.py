"""A small ``/system/bin/sh`` for the simulated device, interpreted in Python.

It understands what the device runner and a curious user send: ``;``, ``&&``, ``||``,
quoting, ``$?``, redirections (``>``, ``>>``, ``2>&1``, ``2>/dev/null``), and the commands
``getprop cat echo mkdir rm rmdir chmod ls df test [ true false uname id whoami dumpsys
taskset sh cd exit sleep`` plus executing a pushed file. Error messages and exit codes copy
Android's mksh and toybox (``inaccessible or not found`` 127, ``can't execute`` 126, …).
Executing a file runs the stand-in benchmark_model or executor_runner when the file carries
its marker; any other program is refused, because nothing here can run real ARM code.
"""

from __future__ import annotations

import os
import shutil
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sinet_deploy.device.sim.profile import DeviceProfile
from sinet_deploy.device.sim.sandbox import Sandbox, SandboxError

SH = "/system/bin/sh"

#: Signature of the function that runs the stand-in: (argv, shell) -> (stdout, stderr, rc).
Runner = Callable[[list[str], "Shell"], tuple[bytes, bytes, int]]


@dataclass
class Result:
    out: bytearray = field(default_factory=bytearray)
    err: bytearray = field(default_factory=bytearray)
    rc: int = 0


class ShellSyntaxError(ValueError):
    pass


# -- tokenizer -------------------------------------------------------------------------------
#: Stands for ``$?`` inside words until the command runs (the status changes along a line).
STATUS = "\0status\0"


def tokenize(line: str) -> list[tuple[str, str]]:
    """Split a command line into ("word", text), ("op", ;|&&|||) and ("redir", spec) tokens.

    ``$?`` (unquoted or in double quotes) becomes :data:`STATUS`, replaced when the simple
    command that contains it runs.
    """
    tokens: list[tuple[str, str]] = []
    i, n = 0, len(line)
    word: list[str] = []
    in_word = False

    def flush() -> None:
        nonlocal in_word
        if in_word:
            tokens.append(("word", "".join(word)))
            word.clear()
            in_word = False

    while i < n:
        c = line[i]
        if c in " \t\n":
            flush()
            i += 1
        elif c == "'":
            j = line.find("'", i + 1)
            if j < 0:
                raise ShellSyntaxError("unterminated '")
            word.append(line[i + 1 : j])
            in_word = True
            i = j + 1
        elif c == '"':
            i += 1
            while i < n and line[i] != '"':
                if line[i] == "\\" and i + 1 < n and line[i + 1] in '"\\$`':
                    word.append(line[i + 1])
                    i += 2
                elif line.startswith("$?", i):
                    word.append(STATUS)
                    i += 2
                else:
                    word.append(line[i])
                    i += 1
            if i >= n:
                raise ShellSyntaxError('unterminated "')
            in_word = True
            i += 1
        elif c == "\\" and i + 1 < n:
            word.append(line[i + 1])
            in_word = True
            i += 2
        elif line.startswith("$?", i):
            word.append(STATUS)
            in_word = True
            i += 2
        elif c == ";":
            flush()
            tokens.append(("op", ";"))
            i += 1
        elif line.startswith("&&", i) or line.startswith("||", i):
            flush()
            tokens.append(("op", line[i : i + 2]))
            i += 2
        elif c == "|":
            raise ShellSyntaxError("pipes are not supported by the simulated shell")
        elif c in "<>" or (c.isdigit() and not in_word and i + 1 < n and line[i + 1] == ">"):
            flush()
            fd = ""
            if c.isdigit():
                fd, i = c, i + 1
            op = ">>" if line.startswith(">>", i) else line[i]
            i += len(op)
            if line.startswith("&", i):
                j = i + 1
                while j < n and line[j].isdigit():
                    j += 1
                tokens.append(("redir", f"{fd or '1'}>&{line[i + 1 : j]}"))
                i = j
                continue
            while i < n and line[i] in " \t":
                i += 1
            j = i
            while j < n and line[j] not in " \t;&|<>":
                j += 1
            if j == i:
                raise ShellSyntaxError(f"missing file name after {op}")
            default_fd = "0" if op == "<" else "1"
            tokens.append(("redir", f"{fd or default_fd}{op}{line[i:j]}"))
            i = j
        else:
            word.append(c)
            in_word = True
            i += 1
    flush()
    return tokens


# -- the shell -------------------------------------------------------------------------------
class Shell:
    """One shell invocation (``adb shell CMD``): its cwd and the last exit status."""

    def __init__(self, sandbox: Sandbox, profile: DeviceProfile, run_standin: Runner) -> None:
        self.sandbox = sandbox
        self.profile = profile
        self.run_standin = run_standin
        self.cwd = "/"
        self.last_rc = 0
        self._exit = False

    def run(self, line: str) -> Result:
        """Run a command line; like ``sh -c``."""
        total = Result()
        try:
            tokens = tokenize(line)
        except ShellSyntaxError as exc:
            total.err += f"{SH}: syntax error: {exc}\n".encode()
            total.rc = 2
            return total
        # Split into (connector, simple command) pairs, evaluated left to right.
        pieces: list[tuple[str, list[tuple[str, str]]]] = []
        connector: str = ";"
        current: list[tuple[str, str]] = []
        for kind, text in tokens:
            if kind == "op":
                pieces.append((connector, current))
                connector, current = text, []
            else:
                current.append((kind, text))
        pieces.append((connector, current))
        for conn, simple in pieces:
            if not simple:
                continue
            if (conn == "&&" and self.last_rc != 0) or (conn == "||" and self.last_rc == 0):
                continue
            res = self._simple(simple)
            total.out += res.out
            total.err += res.err
            total.rc = self.last_rc = res.rc
            if self._exit:
                break
        return total

    def _simple(self, tokens: list[tuple[str, str]]) -> Result:
        status = str(self.last_rc)
        argv = [text.replace(STATUS, status) for kind, text in tokens if kind == "word"]
        redirs = [text for kind, text in tokens if kind == "redir"]
        if not argv:
            return Result()
        res = self._dispatch(argv)
        for spec in redirs:
            self._apply_redirect(spec, res)
        return res

    def _apply_redirect(self, spec: str, res: Result) -> None:
        fd, rest = spec[0], spec[1:]
        if rest.startswith(">&"):
            if fd == "2" and rest[2:] == "1":
                res.out += res.err
                res.err = bytearray()
            elif fd == "1" and rest[2:] == "2":
                res.err += res.out
                res.out = bytearray()
            return
        if rest.startswith("<"):
            return
        append = rest.startswith(">>")
        target = rest[2:] if append else rest[1:]
        data = res.out if fd == "1" else res.err
        if target != "/dev/null":
            try:
                host = self.sandbox.check_writable(target, self.cwd)
                with open(host, "ab" if append else "wb") as fh:
                    fh.write(bytes(data))
            except (SandboxError, OSError) as exc:
                res.err += f"{SH}: can't create {target}: {exc.strerror}\n".encode()
                res.rc = 1
        if fd == "1":
            res.out = bytearray()
        else:
            res.err = bytearray()

    # -- commands --------------------------------------------------------------------------
    def _dispatch(self, argv: list[str]) -> Result:
        name = argv[0]
        if "/" in name:
            return self._exec_file(argv)
        handler = getattr(self, "cmd_" + name.replace("[", "bracket"), None)
        if handler is None:
            return Result(
                err=bytearray(f"{SH}: {name}: inaccessible or not found\n".encode()), rc=127
            )
        return handler(argv[1:])

    def _err(self, text: str, rc: int = 1) -> Result:
        return Result(err=bytearray(text.encode()), rc=rc)

    def cmd_true(self, args: list[str]) -> Result:
        return Result()

    def cmd_false(self, args: list[str]) -> Result:
        return Result(rc=1)

    def cmd_exit(self, args: list[str]) -> Result:
        self._exit = True
        return Result(rc=int(args[0]) if args and args[0].isdigit() else self.last_rc)

    def cmd_sleep(self, args: list[str]) -> Result:
        try:
            time.sleep(min(float(args[0]), 30.0))
        except (IndexError, ValueError):
            return self._err("sleep: need a number\n")
        return Result()

    def cmd_echo(self, args: list[str]) -> Result:
        newline = True
        if args and args[0] == "-n":
            newline, args = False, args[1:]
        return Result(out=bytearray((" ".join(args) + ("\n" if newline else "")).encode()))

    def cmd_cd(self, args: list[str]) -> Result:
        target = self.sandbox.device_path(args[0] if args else "/", self.cwd)
        try:
            if not self.sandbox.host_path(target).is_dir():
                return self._err(f"{SH}: cd: {target}: No such file or directory\n", 2)
        except SandboxError:
            return self._err(f"{SH}: cd: {target}: Permission denied\n", 2)
        self.cwd = target
        return Result()

    def cmd_getprop(self, args: list[str]) -> Result:
        props = self.profile.props
        if not args:
            text = "".join(f"[{k}]: [{v}]\n" for k, v in sorted(props.items()))
            return Result(out=bytearray(text.encode()))
        default = args[1] if len(args) > 1 else ""
        return Result(out=bytearray((props.get(args[0], default) + "\n").encode()))

    def cmd_uname(self, args: list[str]) -> Result:
        machine = "aarch64" if self.profile.abi == "arm64-v8a" else "armv7l"
        return Result(out=bytearray(((machine if "-m" in args else "Linux") + "\n").encode()))

    def cmd_id(self, args: list[str]) -> Result:
        return Result(out=bytearray(b"uid=2000(shell) gid=2000(shell) groups=2000(shell)\n"))

    def cmd_whoami(self, args: list[str]) -> Result:
        return Result(out=bytearray(b"shell\n"))

    def cmd_sh(self, args: list[str]) -> Result:
        if len(args) >= 2 and args[0] == "-c":
            sub = Shell(self.sandbox, self.profile, self.run_standin)
            sub.cwd = self.cwd
            res = sub.run(args[1])
            return res
        return self._err(f"{SH}: only 'sh -c CMD' is supported by the simulated shell\n", 2)

    def cmd_cat(self, args: list[str]) -> Result:
        res = Result()
        for name in args:
            try:
                host = self.sandbox.host_path(name, self.cwd)
                if host.is_dir():
                    res.err += f"cat: {name}: Is a directory\n".encode()
                    res.rc = 1
                    continue
                res.out += host.read_bytes()
            except FileNotFoundError:
                res.err += f"cat: {name}: No such file or directory\n".encode()
                res.rc = 1
            except (SandboxError, OSError) as exc:
                res.err += f"cat: {name}: {exc.strerror}\n".encode()
                res.rc = 1
        return res

    def cmd_mkdir(self, args: list[str]) -> Result:
        parents = "-p" in args
        res = Result()
        for name in (a for a in args if not a.startswith("-")):
            try:
                host = self.sandbox.check_writable(name, self.cwd)
                if host.exists() and not parents:
                    raise FileExistsError(17, "File exists")
                if not parents and not host.parent.is_dir():
                    raise FileNotFoundError(2, "No such file or directory")
                host.mkdir(parents=parents, exist_ok=parents)
            except (SandboxError, OSError) as exc:
                res.err += f"mkdir: '{name}': {exc.strerror}\n".encode()
                res.rc = 1
        return res

    def cmd_rm(self, args: list[str]) -> Result:
        flags = "".join(a[1:] for a in args if a.startswith("-"))
        recursive, force = bool(set(flags) & {"r", "R"}), "f" in flags
        res = Result()
        for name in (a for a in args if not a.startswith("-")):
            try:
                host = self.sandbox.check_writable(name, self.cwd)
                if host.is_dir() and not host.is_symlink():
                    if not recursive:
                        raise IsADirectoryError(21, "Is a directory")
                    shutil.rmtree(host)
                elif host.exists() or host.is_symlink():
                    host.unlink()
                elif not force:
                    raise FileNotFoundError(2, "No such file or directory")
            except (SandboxError, OSError) as exc:
                res.err += f"rm: {name}: {exc.strerror}\n".encode()
                res.rc = 1
        return res

    def cmd_rmdir(self, args: list[str]) -> Result:
        res = Result()
        for name in args:
            try:
                self.sandbox.check_writable(name, self.cwd).rmdir()
            except (SandboxError, OSError) as exc:
                res.err += f"rmdir: {name}: {exc.strerror}\n".encode()
                res.rc = 1
        return res

    def cmd_chmod(self, args: list[str]) -> Result:
        args = [a for a in args if a not in ("-R",)]
        if len(args) < 2:
            return self._err("chmod: Need 2 arguments\n")
        mode_s, names = args[0], args[1:]
        res = Result()
        for name in names:
            try:
                host = self.sandbox.check_writable(name, self.cwd)
                old = host.stat().st_mode & 0o7777
                if mode_s.isdigit():
                    new = int(mode_s, 8)
                elif mode_s in ("+x", "a+x", "u+x"):
                    new = old | (0o111 if mode_s != "u+x" else 0o100)
                else:
                    return self._err(f"chmod: bad mode '{mode_s}'\n")
                os.chmod(host, new)
            except FileNotFoundError:
                res.err += f"chmod: {name}: No such file or directory\n".encode()
                res.rc = 1
            except (SandboxError, OSError) as exc:
                res.err += f"chmod: {name}: {exc.strerror}\n".encode()
                res.rc = 1
        return res

    def cmd_ls(self, args: list[str]) -> Result:
        long = any(a.startswith("-") and "l" in a for a in args)
        names = [a for a in args if not a.startswith("-")] or [self.cwd]
        res = Result()
        for name in names:
            try:
                host = self.sandbox.host_path(name, self.cwd)
                if not host.exists():
                    raise FileNotFoundError(2, "No such file or directory")
                entries = sorted(host.iterdir()) if host.is_dir() else [host]
                for e in entries:
                    if long:
                        st = e.stat()
                        res.out += (
                            f"{stat.filemode(st.st_mode)} 1 shell shell {st.st_size} {e.name}\n"
                        ).encode()
                    else:
                        res.out += (e.name + "\n").encode()
            except (SandboxError, OSError) as exc:
                res.err += f"ls: {name}: {exc.strerror}\n".encode()
                res.rc = 1
        return res

    def cmd_df(self, args: list[str]) -> Result:
        free_k = self.sandbox.free_bytes() // 1024
        size_k = max(free_k, 1) + 4 * 1024 * 1024
        used = size_k - free_k
        line = f"/dev/block/dm-5 {size_k} {used} {free_k} {100 * used // size_k}% /data\n"
        return Result(
            out=bytearray(
                ("Filesystem      1K-blocks    Used Available Use% Mounted on\n" + line).encode()
            )
        )

    def cmd_test(self, args: list[str]) -> Result:
        if len(args) == 2 and args[0] in ("-e", "-f", "-d", "-x"):
            try:
                host = self.sandbox.host_path(args[1], self.cwd)
            except SandboxError:
                return Result(rc=1)
            ok = {
                "-e": host.exists(),
                "-f": host.is_file(),
                "-d": host.is_dir(),
                "-x": host.exists() and bool(host.stat().st_mode & 0o111),
            }[args[0]]
            return Result(rc=0 if ok else 1)
        if len(args) == 3 and args[1] in ("=", "!="):
            return Result(rc=0 if (args[0] == args[2]) == (args[1] == "=") else 1)
        return self._err(f"{SH}: test: unsupported expression {' '.join(args)}\n", 2)

    def cmd_bracket(self, args: list[str]) -> Result:
        if not args or args[-1] != "]":
            return self._err(f"{SH}: [: missing ]\n", 2)
        return self.cmd_test(args[:-1])

    def cmd_dumpsys(self, args: list[str]) -> Result:
        if args[:1] != ["battery"]:
            name = args[0] if args else ""
            return self._err(f"Can't find service: {name}\n")
        t = self.profile.battery_temp_decic
        text = (
            "Current Battery Service state:\n  AC powered: false\n  USB powered: true\n"
            "  status: 2\n  health: 2\n  present: true\n  level: 87\n  scale: 100\n"
            f"  voltage: 4123\n  temperature: {t}\n  technology: Li-ion\n"
        )
        return Result(out=bytearray(text.encode()))

    def cmd_taskset(self, args: list[str]) -> Result:
        # The simulator validates the mask as taskset would, then runs the command unpinned:
        # pinning host threads to a phone's big cores would mean nothing.
        if args and args[0] == "-p":
            return self._err("taskset: -p is not supported by the simulated shell\n")
        if len(args) < 2:
            return self._err("usage: taskset [-ap] [mask] [PID | cmd [args...]]\n")
        try:
            mask = int(args[0], 16)
        except ValueError:
            return self._err(f"taskset: bad mask '{args[0]}'\n")
        if mask == 0 or mask >> len(self.profile.cpu_max_khz):
            return self._err("taskset: sched_setaffinity: Invalid argument\n")
        return self._dispatch(args[1:])

    # -- executing files -------------------------------------------------------------------
    def _exec_file(self, argv: list[str]) -> Result:
        from sinet_deploy.device.elf import ElfInfo, read_elf_header
        from sinet_deploy.device.sim.et_standin import is_et_standin
        from sinet_deploy.device.sim.standin import is_standin

        name = argv[0]
        try:
            host = self.sandbox.host_path(name, self.cwd)
        except SandboxError:
            return self._err(f"{SH}: {name}: can't execute: Permission denied\n", 126)
        if not host.is_file():
            return self._err(f"{SH}: {name}: inaccessible or not found\n", 127)
        if not host.stat().st_mode & 0o111:
            return self._err(f"{SH}: {name}: can't execute: Permission denied\n", 126)
        head = host.read_bytes()[:4096]
        info: ElfInfo | None = read_elf_header(head)
        if info is None:
            return self._err(
                f"{SH}: {name}: not executable: magic 7F45 missing "
                "(the simulated shell runs no scripts)\n",
                126,
            )
        if info.abi not in self.profile.props["ro.product.cpu.abilist"].split(","):
            return self._err(f"{SH}: {name}: not executable: {info.bits}-bit ELF file\n", 126)
        if not (is_standin(head) or is_et_standin(head)):
            return self._err(
                f"{SH}: {name}: not executable: this SIMULATED device runs only the "
                "sinet-deploy stand-ins (benchmark_model, executor_runner), not real ARM code\n",
                126,
            )
        out, err, rc = self.run_standin(argv, self)
        return Result(out=bytearray(out), err=bytearray(err), rc=rc)
