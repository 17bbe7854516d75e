"""What a reader calls things on a page: methods (a run's ``method``, a table row's kind) and tasks."""

# a run's config.method, and the kinds of Table 1-2 rows ("ours-dense": k0 = 0, "ours-sparse": k0 > 0)
METHOD_LABELS = {
    "wc_al": "ours",
    "mgda": "MGDA-UB",
    "stl": "STL",
    "mtan": "MTAN",
    "kdmtl": "KDMTL",
    "unitary": "unitary",
    "ours-dense": "Ours, k0 = 0",
    "ours-sparse": "Ours, k0 > 0",
}
# each dataset's tasks as the paper's tables head them
TASK_LABELS = {"multimnist": ("left", "right"), "cifar10mnist": ("CIFAR-10", "MNIST")}
