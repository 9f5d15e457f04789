"""The DAAF network (base ReID net + HAB + PAB), its losses, the trainer and the stripped export."""
