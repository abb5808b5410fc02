"""The plan object: every step per host, platform variants, skips, run-time placeholders, the saved form."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import targets, variables
from engine.errors import InvalidRunbook
from engine.planner import build_plan
from engine.planning import Plan, sha256_text
from engine.reviewing import digest, reviewable
from engine.validation import validate

ROOT = Path(__file__).resolve().parent.parent
DEMO = "tests/data/plan-demo.yml"
ROLLBACK = "runbooks/ha-rollback.yml"
ROLLBACK_VARS = {"snapshot": "etcd-1", "prior_version": "v2.0.8", "rke_dir": str(ROOT / "tests/data/rke")}


def make_plan(
    file: str, cli: dict[str, str], platform: str | None = "linux", hosts: dict[str, str] | None = None
) -> Plan:
    runbook = validate(ROOT / file, file).runbook
    values = variables.resolve(runbook, cli, environ={})
    context = {**values.values, "platform": platform or ""}
    return build_plan(runbook, values, platform, targets.resolve(runbook, context, hosts))


def commands(plan: Plan, step_id: str) -> list[dict[str, str]]:
    step = plan.step(step_id)
    assert step is not None
    return [{v.platform: v.script for v in hp.variants} for hp in step.hosts]


def test_local_steps_use_the_chosen_platform() -> None:
    linux = make_plan(ROLLBACK, ROLLBACK_VARS, "linux")
    assert commands(linux, "restore-snapshot") == [
        {"linux": "./rke_linux-amd64 etcd snapshot-restore --name etcd-1 --config rancher-cluster.yml"}
    ]
    darwin = make_plan(ROLLBACK, ROLLBACK_VARS, "darwin")
    assert commands(darwin, "rke-up") == [{"darwin": "./rke_darwin-amd64 up --config rancher-cluster.yml"}]
    assert commands(darwin, "set-image") == [
        {
            "*": "kubectl --kubeconfig=kube_config_rancher-cluster.yml set image "
            "deployment/cattle cattle-server=rancher/rancher:v2.0.8 "
            "-n cattle-system"
        }
    ]


def test_without_a_platform_every_variant_is_kept() -> None:
    plan = make_plan(ROLLBACK, ROLLBACK_VARS, None)
    assert commands(plan, "rke-up") == [
        {
            "darwin": "./rke_darwin-amd64 up --config rancher-cluster.yml",
            "linux": "./rke_linux-amd64 up --config rancher-cluster.yml",
        }
    ]


def test_a_step_on_a_target_runs_on_every_host_with_the_platform_left_open() -> None:
    plan = make_plan(DEMO, {"marker": "m"}, "linux")
    remote = plan.step("remote")
    assert remote is not None
    assert (remote.target, remote.concurrency, remote.fan_out) == ("web", 1, True)
    assert [hp.host.name for hp in remote.hosts] == ["web1", "web2"]
    # an SSH host's platform is learnt in preflight: both variants stay, `host` is this host
    assert commands(plan, "remote") == [
        {"linux": "uname -a && echo web1", "darwin": "sw_vers"},
        {"linux": "uname -a && echo web2", "darwin": "sw_vers"},
    ]
    assert remote.hosts[1].host.user == "deploy" and remote.hosts[1].host.port == 2200


def test_every_node_of_the_inventory_gets_the_restart_block() -> None:
    plan = make_plan(ROLLBACK, ROLLBACK_VARS)
    restart = plan.step("restart-components")
    assert restart is not None
    assert [hp.host.address for hp in restart.hosts] == ["10.0.0.11", "10.0.0.12", "node3.example.com"]
    script = restart.hosts[2].variants[0].script
    assert script.splitlines()[1] == 'docker ps | grep flannel | cut -f 1 -d " " | xargs -r docker restart'
    assert restart.programs == ("docker", "grep", "cut", "xargs")
    assert restart.step.timeout == 600.0


def test_steps_keep_confirmations_manual_texts_and_records() -> None:
    plan = make_plan(ROLLBACK, ROLLBACK_VARS)
    restore = plan.step("restore-snapshot")
    assert restore is not None and restore.step.confirm is not None
    assert restore.confirm_text == "etcd-1"
    assert restore.hosts[0].cwd == ROLLBACK_VARS["rke_dir"]
    check = plan.step("check-version")
    assert check is not None
    assert check.hosts == ()
    assert check.manual is not None and check.manual.endswith("It should read v2.0.8.\n")
    assert check.record_expect == "v2.0.8"
    assert plan.checks[0].title == "The RKE binary used for the upgrade is in rke_dir and executable"
    state = plan.checks[1].hosts[0].variants[0].script
    assert state.startswith("test -f rancher-cluster.yml\nversion=$(./rke_linux-amd64 --version ")
    assert "v[0-9]*) test -f rancher-cluster.rkestate || " in state


def test_values_from_earlier_steps_are_marked_for_run_time() -> None:
    plan = make_plan(DEMO, {"marker": "m"})
    later = plan.step("later")
    assert later is not None
    assert later.hosts[0].deferred is True
    assert later.hosts[0].skip is None  # `when` reads steps.*: decided at run time
    assert commands(plan, "later") == [{"*": "echo <steps.touch.stdout: known at run time>"}]


def test_secrets_are_environment_references_with_their_names_listed() -> None:
    plan = make_plan(DEMO, {"marker": "m"})
    step = plan.step("uses-secret")
    assert step is not None
    variant = step.hosts[0].variants[0]
    assert variant.script == 'curl -u admin:"${RUNBOOK_SECRET_TOKEN}" https://example.invalid'
    assert variant.secret_env == ("RUNBOOK_SECRET_TOKEN",)
    assert step.hosts[0].env == (("MODE", "linux"),)
    assert "s3cr3t-token-value" not in repr(reviewable(plan))


def test_a_missing_platform_variant_is_an_error_and_a_false_when_skips(tmp_path: Path) -> None:
    path = tmp_path / "rb.yml"
    path.write_text(
        "runbook: 1\nname: demo\nversion: '1'\ntitle: T\nsteps:\n"
        "  - {id: mac, title: Mac only, when: \"platform == 'darwin'\", run: sw_vers}\n"
        "  - {id: win, title: W, run: {windows: ver}}\n",
        encoding="utf-8",
    )
    runbook = validate(path).runbook
    values = variables.resolve(runbook, {}, environ={})
    resolved = targets.resolve(runbook, {"platform": "linux"})
    with pytest.raises(InvalidRunbook) as error:
        build_plan(runbook, values, "linux", resolved)
    assert [str(p) for p in error.value.problems] == [
        f"{path}:7:40: steps[1].run.windows: no command for platform 'linux': add 'linux' or 'default'"
    ]
    plan = build_plan(runbook, values, "windows", resolved)
    step = plan.step("mac")
    assert step is not None
    assert step.hosts[0].skip == "when: platform == 'darwin' is false"


def test_the_saved_form_is_stable_and_its_digest_covers_it() -> None:
    first = reviewable(make_plan(DEMO, {"marker": "m"}))
    second = reviewable(make_plan(DEMO, {"marker": "m"}))
    assert first == second and digest(first) == digest(second)
    assert first["runbook"]["sha256"] == sha256_text((ROOT / DEMO).read_text(encoding="utf-8"))
    changed = reviewable(make_plan(DEMO, {"marker": "other"}))
    assert digest(changed) != digest(first)
    assert [s["id"] for s in first["steps"]] == ["touch", "remote", "uses-secret", "later", "look"]


def test_render_problems_of_every_step_are_raised_together(tmp_path: Path) -> None:
    path = tmp_path / "rb.yml"
    path.write_text(
        "runbook: 1\nname: demo\nversion: '1'\ntitle: T\nvariables:\n  n: {type: integer, default: 0}\n"
        "steps:\n  - {id: a, title: A, run: 'echo {{ 1 / n }}'}\n"
        "  - {id: b, title: B, run: 'echo {{ \"x\" + n }}'}\n",
        encoding="utf-8",
    )
    with pytest.raises(InvalidRunbook) as error:
        make_plan(str(path), {})
    assert [str(p) for p in error.value.problems] == [
        f"{path}:8:28: steps[0].run: template error: division by zero",
        f'{path}:9:28: steps[1].run: template error: can only concatenate str (not "int") to str',
    ]


def test_a_false_when_guards_the_values_its_command_needs(tmp_path: Path) -> None:
    """`when` is decided before the command is rendered, so it can protect an optional value."""
    path = tmp_path / "guarded.yml"
    path.write_text(
        "runbook: 1\nname: guarded\nversion: '1'\ntitle: Guarded\n"
        "variables:\n  extra: {type: object, default: {}}\n"
        "steps:\n  - id: use\n    title: Use it\n    when: \"'name' in extra\"\n    run: echo {{ extra.name }}\n"
    )
    (host,) = make_plan(str(path), {}).steps[0].hosts
    assert host.skip == "when: 'name' in extra is false" and host.variants == ()


def test_a_secret_outside_run_is_refused_where_it_is_written(tmp_path: Path) -> None:
    path = tmp_path / "leak.yml"
    path.write_text(
        "runbook: 1\nname: leak\nversion: '1'\ntitle: Leak\n"
        "variables:\n  token: {type: string, secret: true}\n"
        "steps:\n  - id: use\n    title: Use it\n    cwd: /srv/{{ token }}\n    run: curl -H {{ token }} x\n"
    )
    with pytest.raises(InvalidRunbook) as caught:
        validate(path)
    (problem,) = caught.value.problems
    assert (problem.line, problem.path) == (10, "steps[0].cwd")
    assert problem.message.startswith("secret 'token' can only be used in 'run'")


def test_an_error_in_a_when_reading_a_secret_does_not_quote_it(tmp_path: Path) -> None:
    path = tmp_path / "when.yml"
    path.write_text(
        "runbook: 1\nname: when\nversion: '1'\ntitle: When\n"
        "variables:\n  token: {type: string, secret: true, default: s3cr3t-t0ken-value}\n"
        "steps:\n  - id: use\n    title: Use it\n    when: \"{'a': 1}[token] > 0\"\n    run: echo\n"
    )
    with pytest.raises(InvalidRunbook) as caught:
        make_plan(str(path), {})
    (problem,) = caught.value.problems
    assert problem.path == "steps[0].when"
    assert problem.message == "undefined: 'dict object' has no attribute '********'"  # jinja quoted the key
