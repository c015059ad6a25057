"""Helpers every stage uses; none imports TensorFlow or another kmnist package.

errors.py          KmnistError ("the user can fix this") and one_line, how any error is shown
disk.py            a write the disk refuses (full, read-only, no permission) as one line
files.py           atomic writes, TF Serving's integer version directories, writable paths
console.py         the quiet console: TensorFlow's C++ lines not meant for users held back
console_filter.py  its filter process (python -m), the standard library alone
manifest.py        MANIFEST.json: versions, flags, accuracy, a sha256 per file
settings.py        a setting: a dataclass field with its flag's help and checks
stopwatch.py       where a run's seconds go, stage by stage
"""
