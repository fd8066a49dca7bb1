"""Learned image compression: GDN, the factorized entropy model, the coder's integer tables,
the bitstream format and the codec objective. The model itself is jaxae.models.codec.Codec;
`python -m jaxae.compress` / `python -m jaxae.decompress` are the command lines.
"""
