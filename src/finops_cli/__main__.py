from finops_cli.cli.main import run

run()
