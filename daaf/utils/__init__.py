"""Small helpers shared by the stages: device choice and torchrun / distributed set-up."""
