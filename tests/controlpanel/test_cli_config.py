"""Where the CLI keeps its token, and its refusals before any network call."""

from controlpanel.cli import config_path, main


def test_config_path_order(monkeypatch, tmp_path):
    monkeypatch.delenv("CONTROLPANEL_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert config_path(None) == tmp_path / "xdg" / "controlpanel" / "cli.json"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert config_path(None) == tmp_path / "home" / ".config" / "controlpanel" / "cli.json"
    monkeypatch.setenv("CONTROLPANEL_CONFIG", str(tmp_path / "env.json"))
    assert config_path(None) == tmp_path / "env.json"
    assert config_path(str(tmp_path / "flag.json")) == tmp_path / "flag.json"


def test_whoami_without_login_says_what_to_do(tmp_path, capsys):
    assert main(["whoami", "--config", str(tmp_path / "none.json")]) == 1
    assert capsys.readouterr().err == (
        "error: Not logged in: run `python -m controlpanel.cli login` first.\n"
    )


def test_env_needs_org_and_project(tmp_path, capsys):
    assert main(["env", "acme", "--config", str(tmp_path / "none.json")]) == 1
    assert "<org>/<project>" in capsys.readouterr().err


def test_unreachable_server_is_a_clear_error(tmp_path, capsys):
    assert main(["login", "--url", "http://127.0.0.1:1", "--config", str(tmp_path / "c")]) == 1
    assert capsys.readouterr().err.startswith(
        "error: Cannot reach the Control Panel at http://127.0.0.1:1:"
    )
