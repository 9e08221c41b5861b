"""Figures of the workflow (matplotlib), one function per figure; the top layer of the
library: it reads the products of every other stage and computes nothing they own."""
