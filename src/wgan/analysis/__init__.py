"""Looking inside trained runs: the critic's Lipschitz constant, latent walks."""
