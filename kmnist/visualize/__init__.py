"""The pictures of what a model learned, for a run just trained and for an export read back.

pictures.py  weights.png, confusion_matrix.png, mistakes.png of a run or of a SavedModel
figures.py   the matplotlib figures (object API, Agg) and PNG writing
"""
