"""Google Gemini Live API (``BidiGenerateContent``) as a sans-I/O protocol."""
