"""The knowledge: playbook entries and their files, flashcard import, macros, the glossary,
conditions and lint. Core: imports no adapter, the store or evaluation."""
