"""Reference targets shipped with the toolkit: its default system under test and its test bed."""
