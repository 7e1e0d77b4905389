"""Report kernels forked from a process that has already imported what the notebooks use.

A report notebook's kernel spends about a second of CPU before its first cell does any work:
starting Python, importing ipykernel, pandas, matplotlib and the toolkit. A report run starts
one kernel per page, five for ``report all``, and on two cores those seconds are a third of the
run. Here one process per runner (the *preloader*) imports them once; each kernel is then a
``fork`` of it, which takes a few milliseconds and shares the imported modules' memory.

How a kernel starts. jupyter_client launches, as the kernel, a small stand-in (Python without
site packages, a few lines) instead of ``python -m ipykernel_launcher``. The stand-in hands
the preloader its arguments, environment, working folder and its standard input, output and
error; the preloader forks; the child takes those over and runs ``ipykernel`` exactly as the
launcher would. What the preloader imported is frozen for the garbage collector before the
first fork (``gc.freeze``): a kernel's collections, and the full one IPython makes as a kernel
exits, look only at the notebook's own objects (about 0.8 s of CPU less per ``report all``).
The stand-in passes on every signal it gets (interrupts, terminate) to the child and exits
with the child's exit code, so jupyter_client manages it as it manages any kernel process; if
the stand-in is killed, the preloader kills the child. A stand-in that cannot reach the
preloader runs the usual launcher instead, so a kernel always starts.

Forking is used for the interpreter's own ``python3`` kernel on Linux only; any other kernel,
or ``ANALYTICS_FORK_KERNELS=0``, starts the usual way. Pages are the same bytes either way (a
test). Each child takes the kernel's own environment before the kernel starts; the toolkit
reads its settings (cache folder, output folder, key) when called, not when imported. What
Python and the preloaded modules read when they start (``PYTHONPATH``, thread counts, time
zone, locale: ``_IMPORT_ENV``) must be the preloader's, or the kernel starts the usual way;
matplotlib is imported with the inline backend that ipykernel would select (``MPLBACKEND``),
unless the caller set another.
The preloader lives as long as the process that started it, so its kernels run the toolkit's
code as it was then, as that process does (``analytics.cache.toolkit_digest`` is read once per
process too); to try edits to the toolkit from a long-lived session, call :func:`stop` (the
next run starts a new preloader) or switch forking off.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: ``0`` (or ``false``, ``no``, ``off``) starts every report kernel as a new Python process.
FORK_ENV = "ANALYTICS_FORK_KERNELS"

#: What the notebooks import, imported once by the preloader (each is optional).
PRELOAD = (
    "ipykernel.kernelapp",
    "ipykernel.ipkernel",
    "ipykernel.zmqshell",
    "ipykernel.debugger",
    "IPython.core.pylabtools",
    "IPython.display",
    "matplotlib_inline.backend_inline",
    "matplotlib.pyplot",
    "pandas",
    "pandas.io.formats.style",
    "pyarrow.parquet",
    "pyarrow.dataset",
    "analytics.kpis",
    "analytics.plots",
    "analytics.comparisons",
    "analytics.narratives",
    "analytics.denials",
    "analytics.scenarios",
)

#: What the pages that fit the learned denial risk import besides (scikit-learn, and SciPy with
#: it): about a second in each of their kernels. Preloaded only for a run with such a page, since
#: a kernel asked for while the preloader imports waits for it.
LEARNED_RISK = ("sklearn.linear_model", "sklearn.metrics")

_INLINE = "module://matplotlib_inline.backend_inline"
#: Variables read when Python starts or a preloaded module is imported: a kernel asked for
#: with other values than the preloader's starts the usual way.
_IMPORT_ENV = ("PYTHONPATH", "PYTHONHOME", "PYTHONSAFEPATH", "PYTHONNOUSERSITE", "PYTHONUSERBASE",
               "PYTHONHASHSEED", "PYTHONWARNINGS", "PYTHONDONTWRITEBYTECODE", "PYTHONUTF8", "PYTHONIOENCODING",
               "MPLBACKEND", "MPLCONFIGDIR", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "TZ", "LANG", "LC_ALL", "LC_CTYPE")
#: Seconds a stand-in waits for the preloader to fork its kernel before it starts the kernel
#: itself (a preloader still importing is waited for this long).
WAIT_SECONDS = 30
#: Seconds the preloader's starter waits at most for its socket to be bound.
_BIND_SECONDS = 5.0
_HEADER = struct.Struct("!Q")  # a request's length; the forked kernel's pid
_CODE = struct.Struct("!q")  # the kernel's exit code (negative: the signal that ended it)
#: The stand-in's interpreter options: no site packages (it needs none), user folder ignored.
STAND_IN_FLAGS = ("-s", "-S")
_FORWARDED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")

# The stand-in jupyter_client launches: ``python -s -S -c STAND_IN SOCKET WAIT ARGS...`` (the
# environment is honoured, as by the usual launcher). It imports only the standard library, so
# it starts in about 20 ms.
STAND_IN = r"""
import json, os, signal, socket, struct, sys
path, wait, args = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
child, pending = 0, []
def forward(signum, frame):
    if not child:
        pending.append(signum)
        return
    try:
        os.kill(child, signum)
    except ProcessLookupError:
        pass
for name in FORWARDED:
    signal.signal(getattr(signal, name), forward)
def exactly(sock, n):
    data = b""
    while len(data) < n:
        got = sock.recv(n - len(data))
        if not got:
            raise ConnectionError("the kernel preloader closed the connection")
        data += got
    return data
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    sock.connect(path)
    body = json.dumps({"argv": args, "cwd": os.getcwd(), "env": dict(os.environ)}).encode()
    socket.send_fds(sock, [struct.pack("!Q", len(body))], [0, 1, 2])
    sock.sendall(body)
    sock.settimeout(wait)
    child = struct.unpack("!Q", exactly(sock, 8))[0]
    sock.settimeout(None)
except OSError:
    sock.close()
    os.execv(sys.executable, [sys.executable, "-m", "ipykernel_launcher", *args])
for signum in pending:
    forward(signum, None)
try:
    code = struct.unpack("!q", exactly(sock, 8))[0]
except OSError:
    code = 1
os._exit(code if code >= 0 else 128 - code)
""".replace("FORWARDED", repr(_FORWARDED))


def _import_env(env: Any) -> dict[str, str]:
    """``env`` with the matplotlib backend ipykernel sets before a notebook imports matplotlib."""
    env = dict(env)
    env.setdefault("MPLBACKEND", _INLINE)
    return env


def enabled() -> bool:
    """Whether report kernels are forked from the preloader here (Linux, not switched off)."""
    if os.environ.get(FORK_ENV, "").strip().lower() in {"0", "false", "no", "off"}:
        return False
    return sys.platform.startswith("linux") and hasattr(os, "fork") and hasattr(socket, "send_fds")


class Preloader:
    """The process kernels are forked from: started once, stopped when this process exits.

    It binds its socket before importing, so a kernel asked for while it imports waits for
    it rather than starting the usual way. It exits when the process that started it does (its
    standard input, a pipe from this process, closes), and kills the kernels it forked then.
    """

    def __init__(self, extra: tuple[str, ...] = ()) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="analytics-kernels-"))
        self.socket = self.folder / "preloader.sock"
        self.extra = tuple(extra)
        env = _import_env(os.environ)
        code = "import sys; del sys.path[0]; from analytics.kernels import _serve; _serve(sys.argv[1], sys.argv[2:])"
        self.process = subprocess.Popen(
            [sys.executable, "-c", code, str(self.socket), *self.extra], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=self.folder,
        )
        # Its socket is bound once Python has started (some 50 ms): a kernel asked for before
        # then would find no socket and start the usual way, so the socket is waited for.
        deadline = time.monotonic() + _BIND_SECONDS
        while not self.socket.exists() and self.alive() and time.monotonic() < deadline:
            time.sleep(0.005)

    def alive(self) -> bool:
        return self.process.poll() is None

    def ready(self) -> bool:
        """Whether it has imported :data:`PRELOAD` (it says so on its standard output) and so
        may have forked kernels."""
        import select

        readable, _, _ = select.select([self.process.stdout], [], [], 0)
        return bool(readable)

    def stop(self) -> None:
        """Close the preloader's lifeline (it kills its kernels and exits) and remove its folder.

        One still importing has forked nothing: it is killed rather than waited for (a run
        whose pages all came from the cache needed no kernel)."""
        if not self.ready():
            self.process.kill()
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        shutil.rmtree(self.folder, ignore_errors=True)


_LOCK = threading.Lock()
_PRELOADER: Preloader | None = None


def preloader(extra: tuple[str, ...] = ()) -> Preloader | None:
    """This process's preloader, started on first use (and again if it died), importing
    :data:`PRELOAD` and ``extra``; None when forking is off (:func:`enabled`). A preloader
    already running is used as it is: a kernel imports what it lacks, as any kernel would."""
    global _PRELOADER
    if not enabled():
        return None
    with _LOCK:
        if _PRELOADER is None or not _PRELOADER.alive():
            if _PRELOADER is not None:
                _PRELOADER.stop()
            else:
                atexit.register(stop)
            _PRELOADER = Preloader(extra)
        return _PRELOADER


def stop() -> None:
    """Stop this process's preloader (it is started again when next needed); also done at exit."""
    global _PRELOADER
    with _LOCK:
        if _PRELOADER is not None:
            _PRELOADER.stop()
            _PRELOADER = None


def manager_class(kernel_name: str, extra: tuple[str, ...] = ()) -> type | None:
    """The kernel manager class that forks ``kernel_name``'s kernels from the preloader, or None
    (start them the usual way): forking off, or a kernel other than this interpreter's ipykernel.
    ``extra`` names modules to preload besides :data:`PRELOAD` (for a preloader started now).

    The class launches the stand-in in place of ``python -m ipykernel_launcher`` when the
    kernel's command is this interpreter's launcher, and leaves any other command alone.
    """
    server = preloader(extra) if kernel_name == "python3" else None
    if server is None:
        return None
    from jupyter_client import AsyncKernelManager

    class ForkedKernelManager(AsyncKernelManager):
        def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
            cmd = super().format_kernel_cmd(extra_arguments)
            if len(cmd) >= 3 and cmd[1:3] == ["-m", "ipykernel_launcher"] and _same_file(cmd[0], sys.executable):
                return [sys.executable, *STAND_IN_FLAGS, "-c", STAND_IN, str(server.socket), str(WAIT_SECONDS),
                        *cmd[3:]]
            return cmd

    return ForkedKernelManager


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


# -- the preloader's side ---------------------------------------------------------------------


def _serve(path: str, extra: Sequence[str] = ()) -> None:
    """Run the preloader: bind ``path``, import :data:`PRELOAD` and ``extra``, fork a kernel per
    request.

    Whatever ends it (its lifeline closing, an error), it kills the kernels it forked and
    removes its socket and folder."""
    import gc
    import importlib

    # What is imported here lives as long as the kernels: the collector leaves it alone (frozen
    # before the first fork), so a kernel's collections, and IPython's full collection as a
    # kernel exits, look only at what the notebook made, and do not write to (and so copy) the
    # memory pages the kernels share with this process (the gc.freeze recipe of the Python docs).
    gc.disable()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    kernels: dict[int, socket.socket] = {}  # pid -> the stand-in's connection
    try:
        for name in (*PRELOAD, *extra):
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - a module that fails here fails, with its message, in the notebook
                pass
        gc.freeze()
        with contextlib.suppress(OSError):  # a runner that has gone reads nothing
            os.write(sys.stdout.fileno(), b"ready\n")  # then nothing more: kernels get the stand-in's output
        _forking(listener, kernels)
    finally:
        for pid in kernels:
            _kill(pid)
        listener.close()
        with contextlib.suppress(OSError):
            os.unlink(path)
            os.rmdir(os.path.dirname(path))  # its own folder, also when its runner was killed


def _forking(listener: socket.socket, kernels: dict[int, socket.socket]) -> None:
    """Fork a kernel for each stand-in that connects, until the lifeline (standard input) closes."""
    import selectors
    import signal

    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "listen")
    selector.register(sys.stdin.fileno(), selectors.EVENT_READ, "lifeline")
    selector.register(wake_r, selectors.EVENT_READ, "children")
    while True:
        for key, _ in selector.select(timeout=1.0):
            if key.data == "lifeline":
                if not os.read(sys.stdin.fileno(), 4096):
                    return
            elif key.data == "listen":
                conn, _ = listener.accept()
                closing = [listener.fileno(), selector.fileno(), wake_r, wake_w, sys.stdin.fileno(),
                           *(c.fileno() for c in kernels.values())]
                pid = _fork_kernel(conn, closing)
                if pid:
                    kernels[pid] = conn
                    selector.register(conn, selectors.EVENT_READ, pid)
            elif key.data == "children":
                with contextlib.suppress(BlockingIOError):
                    while os.read(wake_r, 4096):
                        pass
            elif not key.fileobj.recv(1):  # the stand-in has gone (killed): its kernel goes too
                selector.unregister(key.fileobj)
                _kill(key.data)
        _reap(kernels, selector)


def _fork_kernel(conn: socket.socket, closing: list[int]) -> int:
    """Read a stand-in's request from ``conn`` and fork its kernel; the child never returns.

    Returns the child's pid (0 when the request could not be read: the stand-in then starts
    the kernel itself)."""
    conn.settimeout(WAIT_SECONDS)  # the stand-in sends its request at once; it waits no longer either
    fds: list[int] = []
    try:
        head, fds, _, _ = socket.recv_fds(conn, _HEADER.size, 3)
        while len(head) < _HEADER.size:
            more = conn.recv(_HEADER.size - len(head))
            if not more:
                raise ConnectionError
            head += more
        size = _HEADER.unpack(head)[0]
        body = bytearray()
        while len(body) < size:
            more = conn.recv(min(1 << 20, size - len(body)))
            if not more:
                raise ConnectionError
            body += more
        if len(fds) != 3:
            raise ConnectionError
        request = json.loads(body)
        asked = _import_env(request["env"])
        if any(asked.get(name) != os.environ.get(name) for name in _IMPORT_ENV):
            raise ConnectionError  # imports would differ from a kernel started afresh
    except (OSError, ValueError, KeyError, TypeError):
        for fd in fds:
            os.close(fd)
        conn.close()
        return 0
    if _closed(conn):  # the stand-in gave up waiting and starts the kernel itself
        for fd in fds:
            os.close(fd)
        conn.close()
        return 0
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        _run_kernel(request, fds, [*closing, conn.fileno()])
    for fd in fds:
        os.close(fd)
    try:
        conn.sendall(_HEADER.pack(pid))
    except OSError:  # gone meanwhile: so goes its kernel
        _kill(pid)
        os.waitpid(pid, 0)
        conn.close()
        return 0
    conn.settimeout(None)
    return pid


def _closed(conn: socket.socket) -> bool:
    """Whether the other end of ``conn`` has closed it (nothing more to read, and no data waiting)."""
    timeout = conn.gettimeout()
    conn.settimeout(0)  # a peek, never a wait
    try:
        return conn.recv(1, socket.MSG_PEEK) == b""
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True
    finally:
        conn.settimeout(timeout)


def _run_kernel(request: dict[str, Any], fds: list[int], closing: list[int]) -> None:
    """In the forked child: become the kernel the stand-in would have launched, then exit."""
    import signal
    import traceback

    code = 1
    try:
        import gc

        gc.enable()  # the preloader's collector was off while it imported; the notebook's objects are collected
        signal.set_wakeup_fd(-1)
        for name in ("SIGCHLD", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for fd in closing:
            with contextlib.suppress(OSError):
                os.close(fd)
        os.setsid()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        for fd in fds:
            if fd > 2:
                os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        argv = list(request["argv"])
        parent = os.environ.get("JPY_PARENT_PID", "")
        if parent.isdigit():  # ipykernel reads it when imported, in the preloader: say it again
            argv.append(f"--IPKernelApp.parent_handle={parent}")
        import importlib.util

        spec = importlib.util.find_spec("ipykernel_launcher")
        sys.argv = [spec.origin if spec and spec.origin else "ipykernel_launcher", *argv]
        from ipykernel import kernelapp

        kernelapp.launch_new_instance(argv=argv)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - the kernel's own failure, reported on its stderr
        traceback.print_exc()
    finally:
        # what an interpreter does as it exits (IPython clears the notebook's names, closing
        # what it left open); not the preloader's own clean-up, which would kill its kernels
        with contextlib.suppress(BaseException):
            atexit._run_exitfuncs()
        with contextlib.suppress(OSError):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _reap(kernels: dict[int, socket.socket], selector: Any) -> None:
    """Tell each finished kernel's stand-in its exit code, and forget it."""
    for pid in list(kernels):
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done, status = pid, 0
        if not done:
            continue
        conn = kernels.pop(pid)
        with contextlib.suppress(KeyError):
            selector.unregister(conn)
        with contextlib.suppress(OSError):
            conn.sendall(_CODE.pack(os.waitstatus_to_exitcode(status)))
        conn.close()


def _kill(pid: int) -> None:
    import signal

    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)
