"""What the service knows of machine learning, apart from running it: the five model types and
their parameters, labels and scores, probabilities, the curves drawn of held-out rows, and
their exact explanations (SHAP values) and feature importance."""
