<?php

declare(strict_types=1);

namespace Emitgate\Tests\Support;

/**
 * A throw-away PKI made with the openssl command for one test run: a CA, a
 * server certificate for 127.0.0.1 and localhost, and a client certificate
 * whose subject is `CN=billing`, plus a self-signed impostor with that same
 * subject. The files are removed when PHP exits.
 */
final class Pki
{
    private static ?self $instance = null;

    public readonly string $ca;
    public readonly string $serverCert;
    public readonly string $serverKey;
    public readonly string $clientCert;
    public readonly string $clientKey;
    public readonly string $impostorCert;
    public readonly string $impostorKey;

    /**
     * Returns the run's PKI, making it on first use.
     */
    public static function get(): self
    {
        return self::$instance ??= new self(TempDir::get());
    }

    private function __construct(public readonly string $dir)
    {
        $ec = '-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes';
        file_put_contents("$dir/ca.cnf", <<<CNF
            [req]
            distinguished_name = dn
            prompt = no
            [dn]
            CN = emitgate test CA
            [ca]
            basicConstraints = critical, CA:TRUE
            keyUsage = critical, keyCertSign, cRLSign
            subjectKeyIdentifier = hash

            CNF);
        self::openssl("req -x509 -config $dir/ca.cnf -extensions ca $ec -keyout $dir/ca.key -out $dir/ca.pem -days 2");
        $leaves = [
            'server' => ['localhost', 'serverAuth', "subjectAltName = IP:127.0.0.1, DNS:localhost\n"],
            'client' => ['billing', 'clientAuth', ''],
        ];
        foreach ($leaves as $name => [$cn, $usage, $more]) {
            file_put_contents(
                "$dir/$name.ext",
                "basicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\n"
                . "extendedKeyUsage = $usage\nauthorityKeyIdentifier = keyid\n$more"
            );
            self::openssl("req -new $ec -keyout $dir/$name.key -out $dir/$name.csr -subj /CN=$cn");
            self::openssl(
                "x509 -req -in $dir/$name.csr -CA $dir/ca.pem -CAkey $dir/ca.key -CAcreateserial"
                . " -out $dir/$name.pem -days 2 -extfile $dir/$name.ext"
            );
        }
        self::openssl(
            "req -x509 $ec -keyout $dir/impostor.key -out $dir/impostor.pem -days 2 -subj /CN=billing"
            . " -addext extendedKeyUsage=clientAuth"
        );
        $this->ca = "$dir/ca.pem";
        $this->serverCert = "$dir/server.pem";
        $this->serverKey = "$dir/server.key";
        $this->clientCert = "$dir/client.pem";
        $this->clientKey = "$dir/client.key";
        $this->impostorCert = "$dir/impostor.pem";
        $this->impostorKey = "$dir/impostor.key";
    }

    private static function openssl(string $args): void
    {
        exec('openssl ' . $args . ' 2>&1', $output, $status);
        if ($status !== 0) {
            throw new \RuntimeException("openssl $args failed:\n" . implode("\n", $output));
        }
    }
}
