"""The attack library. Each module registers one or more attacks with attacks.base.register."""
