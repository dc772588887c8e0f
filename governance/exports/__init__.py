"""PDF documents for regulatory review: the model dossier, the audit-trail report and the
fairness report, each a PDF/A-3b file carrying the JSON record it was made from."""
