"""A cloud source used without its pip extra says exactly what to install, with no traceback."""

from __future__ import annotations

import subprocess
import sys

from conftest import write_config

BLOCK = ("import sys\n"
         "for name in ('boto3', 'botocore'):\n"
         "    sys.modules[name] = None  # as if finops-cli[aws] were not installed\n"
         "from finops_cli.cli.main import run\n"
         "run(sys.argv[1:])\n")


def test_missing_aws_extra_prints_the_install_line(tmp_path):
    config = write_config(tmp_path, "store: s.duckdb\nsources:\n  - {name: payer, type: aws, "
                                    "endpoint_url: 'http://127.0.0.1:9'}\n")
    proc = subprocess.run([sys.executable, "-c", BLOCK, "-c", str(config), "sync"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert 'pip install "finops-cli[aws]"' in proc.stderr
    assert "Traceback" not in proc.stderr
    # validating the config needs no SDK at all
    proc = subprocess.run([sys.executable, "-c", BLOCK, "-c", str(config), "config", "validate"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
