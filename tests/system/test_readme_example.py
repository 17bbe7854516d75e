"""The README's library example runs as written (at the smoke preset, on the tests' synthetic data):
the front door's ten lines are checked, not only read."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_api_example_runs(synthetic_data_root, tmp_path, monkeypatch):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Use the library") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert '"path/to/data"' in code and 'preset="quick"' in code  # what is replaced below
    code = code.replace('"path/to/data"', repr(str(synthetic_data_root))).replace('preset="quick"', 'preset="smoke"')
    monkeypatch.setenv("MDMTN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MDMTN_ALLOW_UNVERIFIED_MNIST", "1")  # synthetic files are not the official ones
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    m = scope["result"].run_record.metrics
    assert 0.0 <= m.test_acc_mean <= 1.0 and m.SR >= 0.0 and len(m.test_acc) == 2
    assert scope["result"].run_record.key == scope["cfg"].key()
