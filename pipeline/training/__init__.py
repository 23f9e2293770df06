"""One cell's fine-tune: its steps, the trainer's arguments, losses, precision, CPU speed-ups and launchers."""
