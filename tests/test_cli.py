"""The `maro` command line."""

from typer.testing import CliRunner

from maro.arena.cli import app

runner = CliRunner()


def test_games_lists_bargaining_with_roles():
    result = runner.invoke(app, ["games"])
    assert result.exit_code == 0 and "bargaining-v1" in result.output and "seller, buyer" in result.output


def test_protogen_check_reports_current_code():
    result = runner.invoke(app, ["dev", "protogen", "--check"])
    assert result.exit_code == 0, result.output


def test_every_subcommand_documents_its_options():
    for command in (["demo"], ["arena", "serve"], ["model", "serve"], ["model", "pull"], ["learn"]):
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0 and "--help" in result.output, command
