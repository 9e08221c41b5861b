"""GPP at flux towers: datasets of daily input windows, models, cross-validation, metrics."""
