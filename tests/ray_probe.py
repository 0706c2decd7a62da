"""One process that starts Ray twice, for the checks that need a Ray of their own in a process of their own
(`tests/adapters/test_ray.py`, `tests/runtime/test_cluster.py`): a bare `ray.init` still replaces the SIGTERM
handler installed before it, and pixelcam's `init_ray` puts it back; then, on that local Ray, a client
holding another token is refused and one holding the cluster's connects, and the driver's children are
listed (Ray's own processes, and the dashboard head's). One probe instead of two: a Ray start and a Python
process with Ray's imports fewer (~8 CPU-s)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from tests.shared import scenario, scenario_fixture

PROBE = """
import json, os, signal, subprocess, sys, ray
from pixelcam.runtime.cluster import init_ray
mine = lambda *a: None
signal.signal(signal.SIGTERM, mine)
ray.init(address="local", num_cpus=1, include_dashboard=False, logging_level="ERROR")
res = {"replaced": signal.getsignal(signal.SIGTERM) is not mine}
ray.shutdown()
signal.signal(signal.SIGTERM, mine)
init_ray(num_cpus=1, quiet=True)  # pixelcam's start: `ray.init` inside the adapter's keep_sigterm_handler
res["kept"] = signal.getsignal(signal.SIGTERM) is mine
addr = ray.get_runtime_context().gcs_address
connect = f"import ray; ray.init(address='{addr}'); print('CONNECTED')"
own = dict(os.environ)
stranger = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
stranger["RAY_AUTH_TOKEN"] = "0" * 64
for name, env in (("stranger", stranger), ("own", own)):
    cmd = [sys.executable, "-c", connect]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    res[name] = {"connected": "CONNECTED" in out.stdout, "err": out.stderr[-2000:]}
# Ray's own processes are this driver's children; the dashboard's UI modules would be its head's children
def children(pid):
    out = {}
    for name in os.listdir("/proc"):
        try:
            stat = open(f"/proc/{name}/stat").read() if name.isdigit() else "0) S 0"
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                out[int(name)] = open(f"/proc/{name}/cmdline").read().replace("\\0", " ")
        except OSError:
            pass
    return out
res["children"] = {cmd: list(children(pid).values()) for pid, cmd in children(os.getpid()).items()}
print(json.dumps(res))
ray.shutdown()
"""


@scenario("environment")  # its tests run late (tests/shared.py `run_order`): no test waits on it early
def ray_probe(environment: dict[str, str]) -> dict[str, Any]:
    """PROBE, started when the run begins (two Ray starts; the stranger's client waits ~20 s before Ray gives
    up): {"rc", "stderr", "result": the probe's JSON (empty when it failed)}."""
    cmd = [sys.executable, "-c", PROBE]  # an explicit environment, as every scenario's (tests/shared.py)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=400, env=environment)
    lines = out.stdout.strip().splitlines()
    result = json.loads(lines[-1]) if out.returncode == 0 and lines else {}
    return {"rc": out.returncode, "stderr": out.stderr, "result": result}


ray_probe_fixture = scenario_fixture("ray_probe")
