mod cli_tls;
