"""Differential fuzzing: hypothesis state machines send the same commands to several engines in
lockstep, compare the replies, explain differences through the divergence registry, and shrink
every unexplained one to a minimal command script (``respmatrix fuzz``).
"""
