"""What the service knows of machine learning, apart from running it: the five model types and
their parameters, labels and scores, probabilities, and the curves drawn of held-out rows."""
