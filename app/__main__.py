from app.cli.entry import run

run()
