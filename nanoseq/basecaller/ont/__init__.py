"""ONT's basecallers (dorado's and bonito's model folders) as nanoseq models."""
