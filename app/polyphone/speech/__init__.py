"""Speech: spoken caller lines (voice) and what each side said (transcription). No Qt."""
