"""Repository contracts: CI runs the README's test command; the README's commands exist."""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read(path):
    with open(os.path.join(ROOT, path)) as f:
        return f.read()


def readme_commands():
    block = re.search(r"## Set-up: two commands.*?```bash\n(.*?)```", read("README.md"), re.S)
    assert block, "README.md lost its set-up block"
    return [line for line in block.group(1).splitlines() if line and not line.startswith("#")]


def test_readme_has_two_setup_commands():
    cmds = readme_commands()
    assert len(cmds) == 2
    assert "experiments.segment" in cmds[0]
    assert "pytest" in cmds[1]


def test_ci_runs_exactly_the_readme_test_command():
    ci = [l.strip() for l in read(".ci/run").splitlines()]
    assert readme_commands()[1] in ci


def test_readme_apps_exist():
    for name in set(re.findall(r"python -m experiments\.(\w+)", read("README.md"))):
        assert os.path.isfile(os.path.join(ROOT, "experiments", name + ".py")), name


def test_no_dataset_files_tracked():
    import subprocess
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout
    assert not re.search(r"(0001TP|0006R0|0016E5|Seq05VD)_\d+\.png|leftImg8bit\.png$", files, re.M)


def test_third_party_names_no_application_and_imports_no_taplab_tf():
    """third_party/ stands alone: it names neither taplab_tf nor an app (experiments.*) in its
    code, docs or messages; the apps compose their own hints (experiments.common.reencode_hint)."""
    bad = []
    for folder, _, files in os.walk(os.path.join(ROOT, "third_party")):
        for name in files:
            if not name.endswith((".py", ".cc", ".h")):
                continue
            path = os.path.join(folder, name)
            text = open(path, encoding="utf-8").read()
            if "experiments" in text or "taplab_tf" in text:
                bad.append(os.path.relpath(path, ROOT))
    assert not bad, bad


def test_the_app_adds_its_reencode_hint_to_the_readers_command():
    from experiments import common
    from third_party.compressed_video import encode_command
    msg = f"x.avi: stream has B-frames; re-encode without them: {encode_command('x.avi')}"
    assert "experiments.encode" in common.reencode_hint(msg)
    assert common.reencode_hint("x.avi: empty file") == ""
