"""Evaluation against the synthetic world's truth: the one place above the method that
may read the world's physics.

The method (``cube``, ``models``, ``train``, ``embed``, ``gpp``) never imports
``ecoembed.synth``; what scores it against truth that only the world's model can produce
lives here, a layer above ``embed`` and ``gpp`` and below ``plots``:

* ``reconstruction``: the fused reconstruction's error against the truth's clear-sky
  reflectance (recomputed with the world's reflectance model on days without S2);
* ``oracle``: the GPP evaluation's ``oracle`` input set (the true fAPAR of the world's
  light-use model) and the table of rule gpp_inputs that includes it;
* ``summary``: what a run made, as text (``python -m ecoembed summary``, printed by
  ``make run``): the GPP skill and differences, the reconstruction errors, where the rest is.
"""
