# petrel.yaml.sed - turns etc/petrel.yaml into the package's
# /etc/petrel/petrel.yaml (debian/rules): the TLS certificate and key become
# the system's snakeoil pair from Debian's ssl-cert package, so the service
# starts on install; the operator replaces them with a real certificate.
s|^  certificate: /etc/petrel/tls/fullchain.pem$|  # Debian: the snakeoil certificate of the ssl-cert package, made at its\
  # installation for this host's name. Clients will not trust it: replace\
  # both lines with a certificate for your relay's name and reload\
  # (systemctl reload petrel).\
  certificate: /etc/ssl/certs/ssl-cert-snakeoil.pem|
s|^  private_key: /etc/petrel/tls/privkey.pem$|  private_key: /etc/ssl/private/ssl-cert-snakeoil.key|
