"""Images and text: decoding, tokenizing and describing the inputs deep networks are for."""
