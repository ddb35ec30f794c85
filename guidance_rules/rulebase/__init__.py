"""The rule base: loading `rules/` safely (`load`), the condition language (`conditions`),
resolving a case against it (`resolve`), and the finite case space it defines (`space`)."""
