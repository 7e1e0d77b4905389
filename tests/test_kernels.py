"""Report kernels forked from the preloader (analytics.kernels).

Each test starts a real kernel through jupyter_client, as the report runner does, and asks
it about itself: that it is a child of the preloader with the notebooks' modules imported, in
its own folder and environment; that an interrupt and a kill reach it; that a stand-in that
cannot use the preloader starts the usual kernel; that the preloader leaves with its runner.
That pages are the same bytes from forked and fresh kernels is checked on the report pack
(``tests/test_cache.py``).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from analytics import kernels

pytestmark = pytest.mark.skipif(not kernels.enabled(), reason="kernels are forked on Linux only")


@pytest.fixture(scope="module", autouse=True)
def preloader_of_this_environment():
    """A preloader started now: one an earlier test file started, in an environment since
    changed (what Python reads as it starts, _IMPORT_ENV), would rightly fork no kernel."""
    kernels.stop()
    yield

_ASK = ("import json, os, sys; print(json.dumps({'pid': os.getpid(), 'ppid': os.getppid(), 'cwd': os.getcwd(), "
        "'pandas': 'pandas' in sys.modules, 'kpis': 'analytics.kpis' in sys.modules, "
        "'sklearn': 'sklearn.linear_model' in sys.modules, "
        "'frozen': __import__('gc').get_freeze_count(), 'collecting': __import__('gc').isenabled(), "
        "'marker': os.environ.get('ANALYTICS_TEST_MARKER')}))")


async def _run(kc, code: str, timeout: float = 60) -> tuple[dict, str]:
    out: list[str] = []

    def hook(msg):
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])

    reply = await kc.execute_interactive(code, timeout=timeout, output_hook=hook)
    return reply["content"], "".join(out)


async def _start(manager_class, **kw):
    km = manager_class(kernel_name="python3")
    await km.start_kernel(**kw)
    kc = km.client()
    kc.start_channels()
    await kc.wait_for_ready(timeout=60)
    return km, kc


async def _stop(km, kc) -> None:
    kc.stop_channels()
    await km.shutdown_kernel(now=False)


def _ask(manager_class, **kw) -> tuple[dict, int | None]:
    """What a kernel says of itself, and the exit code of the process jupyter_client launched."""

    async def go():
        km, kc = await _start(manager_class, **kw)
        launched = km.provisioner.process
        try:
            reply, text = await _run(kc, _ASK)
            assert reply["status"] == "ok", reply
        finally:
            await _stop(km, kc)
        return json.loads(text), launched.wait(timeout=30)

    return asyncio.run(go())


def _gone(pid: int, seconds: float = 15) -> bool:
    """Whether process ``pid`` ends (or is a zombie nobody has reaped yet) within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


def test_a_kernel_is_a_fork_of_the_preloader_in_its_own_folder_and_environment(tmp_path):
    manager = kernels.manager_class("python3")
    assert manager is not None
    env = {**os.environ, "ANALYTICS_TEST_MARKER": "kernel-env"}
    said, code = _ask(manager, env=env, cwd=str(tmp_path))
    assert said["ppid"] == kernels.preloader().process.pid
    assert said["pandas"] and said["kpis"]  # imported before the kernel's first cell
    # what the preloader imported is frozen (the kernel's collections skip it); the notebook's
    # own objects are collected
    assert said["frozen"] > 100_000 and said["collecting"]
    assert Path(said["cwd"]).resolve() == tmp_path.resolve()
    assert said["marker"] == "kernel-env"
    assert code == 0  # the stand-in exits with the kernel's code


def test_a_run_with_the_learned_risk_pages_preloads_what_they_import(tmp_path):
    """A preloader started for a run with the denial-risk or scenarios page imports scikit-learn
    once, for every kernel; one started for other pages does not (a kernel asked for while it
    imports would wait for it)."""
    kernels.stop()
    try:
        plain, _ = _ask(kernels.manager_class("python3"), env=dict(os.environ), cwd=str(tmp_path))
        kernels.stop()
        learned, _ = _ask(kernels.manager_class("python3", kernels.LEARNED_RISK), env=dict(os.environ),
                          cwd=str(tmp_path))
        assert learned["ppid"] == kernels.preloader().process.pid
    finally:
        kernels.stop()
    assert not plain["sklearn"] and learned["sklearn"]


def test_each_kernel_is_a_new_process(tmp_path):
    manager = kernels.manager_class("python3")
    first, _ = _ask(manager, env=dict(os.environ), cwd=str(tmp_path))
    second, _ = _ask(manager, env=dict(os.environ), cwd=str(tmp_path))
    assert first["pid"] != second["pid"]
    assert first["ppid"] == second["ppid"] == kernels.preloader().process.pid


def test_an_interrupt_reaches_the_forked_kernel(tmp_path):
    manager = kernels.manager_class("python3")

    async def go():
        km, kc = await _start(manager, env=dict(os.environ), cwd=str(tmp_path))
        try:
            started = time.monotonic()
            running = asyncio.ensure_future(_run(kc, "import time\ntime.sleep(120)", timeout=60))
            await asyncio.sleep(1.0)
            await km.interrupt_kernel()
            reply, _ = await asyncio.wait_for(running, 30)
            after, text = await _run(kc, "print('still here')")  # the kernel lives on
            return reply, time.monotonic() - started, after, text
        finally:
            await _stop(km, kc)

    reply, seconds, after, text = asyncio.run(go())
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt"
    assert seconds < 60
    assert after["status"] == "ok" and text.strip() == "still here"


def test_a_killed_stand_in_takes_its_kernel_along(tmp_path):
    manager = kernels.manager_class("python3")

    async def go():
        km, kc = await _start(manager, env=dict(os.environ), cwd=str(tmp_path))
        try:
            _, text = await _run(kc, _ASK)
            kernel = json.loads(text)["pid"]
            os.kill(km.provisioner.process.pid, signal.SIGKILL)
            return kernel
        finally:
            kc.stop_channels()
            await km.shutdown_kernel(now=True)

    kernel = asyncio.run(go())
    assert _gone(kernel)


def test_a_stand_in_that_cannot_reach_the_preloader_starts_the_usual_kernel(tmp_path):
    said, code = _ask(_standing_in_for(tmp_path / "no.sock", 30), env=dict(os.environ), cwd=str(tmp_path))
    assert said["ppid"] == os.getpid()  # the stand-in became the kernel: launched by this process
    assert not said["kpis"]
    assert code == 0


def test_a_stand_in_whose_preloader_does_not_answer_starts_the_usual_kernel(tmp_path):
    """A preloader stuck (here: a socket that takes the request and never answers) costs the
    wait, not the kernel."""
    import socket

    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    silent.bind(str(tmp_path / "silent.sock"))
    silent.listen(4)
    try:
        started = time.monotonic()
        said, code = _ask(_standing_in_for(tmp_path / "silent.sock", 1), env=dict(os.environ), cwd=str(tmp_path))
    finally:
        silent.close()
    assert said["ppid"] == os.getpid() and not said["kpis"]
    assert code == 0 and time.monotonic() - started < 30


def _standing_in_for(path: Path, wait: float):
    """A kernel manager launching the stand-in for the preloader at ``path`` (which may not exist)."""
    from jupyter_client import AsyncKernelManager

    class StandIn(AsyncKernelManager):
        def format_kernel_cmd(self, extra_arguments=None):
            cmd = super().format_kernel_cmd(extra_arguments)
            return [sys.executable, *kernels.STAND_IN_FLAGS, "-c", kernels.STAND_IN, str(path), str(wait), *cmd[3:]]

    return StandIn


def test_a_kernel_asked_for_with_another_python_path_starts_afresh(tmp_path):
    manager = kernels.manager_class("python3")
    path = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    said, _ = _ask(manager, env={**os.environ, "PYTHONPATH": path}, cwd=str(tmp_path))
    assert said["ppid"] == os.getpid() and not said["kpis"]


def test_the_preloader_leaves_with_the_process_that_started_it(tmp_path):
    code = ("import sys, time\nfrom analytics import kernels\np = kernels.preloader()\n"
            "print(p.process.pid, p.folder, flush=True)\ntime.sleep(120)")
    runner = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        pid, folder = runner.stdout.readline().split()
    finally:
        runner.kill()
        runner.wait()
    assert _gone(int(pid))
    assert not Path(folder).exists()  # removed by the preloader itself: its runner could not


@pytest.mark.parametrize("value", ["0", "false", "off"])
def test_forking_can_be_switched_off(monkeypatch, value):
    monkeypatch.setenv(kernels.FORK_ENV, value)
    assert not kernels.enabled()
    assert kernels.manager_class("python3") is None


def test_another_kernel_is_launched_as_it_is():
    manager = kernels.manager_class("python3")
    km = manager(kernel_name="python3")
    km.kernel_spec.argv = ["/opt/other/kernel", "-f", "{connection_file}"]
    km._launch_args = {}
    assert km.format_kernel_cmd()[0] == "/opt/other/kernel"


@pytest.mark.parametrize("forked", [True, False], ids=["forked", "afresh"])
def test_what_a_notebook_leaves_open_is_written_when_its_kernel_ends(tmp_path, forked):
    """A file a cell opened and never closed is flushed when the kernel ends, forked or not."""
    manager = kernels.manager_class("python3") if forked else _standing_in_for(tmp_path / "no.sock", 30)

    async def go():
        km, kc = await _start(manager, env=dict(os.environ), cwd=str(tmp_path))
        try:
            reply, _ = await _run(kc, "left_open = open('left-open.txt', 'w')\nleft_open.write('kept')")
            assert reply["status"] == "ok", reply
        finally:
            await _stop(km, kc)

    asyncio.run(go())
    assert (tmp_path / "left-open.txt").read_text() == "kept"


def test_a_stopped_preloader_is_gone_and_started_again_when_needed():
    first = kernels.preloader()
    kernels.stop()
    assert first.process.poll() is not None and not first.folder.exists()
    again = kernels.preloader()
    assert again is not first and again.alive()
