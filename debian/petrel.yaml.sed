# petrel.yaml.sed - turns etc/petrel.yaml into the package's
# /etc/petrel/petrel.yaml (debian/rules): the TLS certificate and key become
# the system's snakeoil pair from Debian's ssl-cert package, so the service
# starts on install; the operator replaces them with a real certificate.
# And local_submission is on, so that the operator edits nothing: adding
# the credential it names and a sending domain is enough (README).
s|^  certificate: /etc/petrel/tls/fullchain.pem$|  # Debian: the snakeoil certificate of the ssl-cert package, made at its\
  # installation for this host's name. Clients will not trust it: replace\
  # both lines with a certificate for your relay's name and reload\
  # (systemctl reload petrel).\
  certificate: /etc/ssl/certs/ssl-cert-snakeoil.pem|
s|^  private_key: /etc/petrel/tls/privkey.pem$|  private_key: /etc/ssl/private/ssl-cert-snakeoil.key|
# Local submission on: sendmail(1) for cron, PHP's mail() (as www-data) and
# mailx works once the operator has made the credential it names
# (relayctl user add local); until then local users get 554 5.3.5.
s|^# (relayctl user add local --domains example.com). Off while unset.$|# (relayctl user add local --domains example.com). Debian: on, for root\
# and www-data (PHP); local users get 554 5.3.5 until that credential\
# exists. Comment the three lines out to turn it off.|
s|^#local_submission:$|local_submission:|
s|^#  users: \[ root, www-data \]$|  users: [ root, www-data ]|
s|^#  credential: local$|  credential: local|
