"""The `playbook` command: thin commands over the library."""
