"""image: the final stage (Dockerfile) and the image report."""
