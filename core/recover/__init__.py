"""Recovery of a pruned network's quality from the dense one: reconstruction at the cut (training-free).

``reconstruct`` refits what can compensate for the removed units so the pruned network's own activations
reproduce the dense network's on calibration frames (no ground truth). ``recovery_status`` reads what a model
file says about how it was made, so every front end can say plainly when a network is an unrecovered cut.
"""
