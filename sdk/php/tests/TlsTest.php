<?php

declare(strict_types=1);

namespace Emitgate\Tests;

use Emitgate\Client;
use Emitgate\Exception\InvalidArgumentException;
use Emitgate\Exception\UnavailableException;
use Emitgate\Tests\Support\EndToEndTestCase;

/**
 * TLS: the gateway behind a TLS-terminating HTTP/2 proxy that requires a
 * client certificate (tests/Support/tls-proxy.js), with certificates made by
 * the openssl command for the test.
 */
final class TlsTest extends EndToEndTestCase
{
    private static ?string $dir = null;

    /** @var resource|null */
    private static $proxy = null;

    /** @var resource|null */
    private static $proxyStdin = null;

    private static string $address = '';

    public static function tearDownAfterClass(): void
    {
        if (self::$proxyStdin !== null) {
            fclose(self::$proxyStdin);
            proc_close(self::$proxy);
            self::$proxy = self::$proxyStdin = null;
        }
        if (self::$dir !== null) {
            array_map('unlink', glob(self::$dir . '/*') ?: []);
            rmdir(self::$dir);
            self::$dir = null;
        }
    }

    protected function setUp(): void
    {
        parent::setUp();
        if (self::$proxy === null) {
            $this->startProxy();
        }
    }

    public function testMutualTlsCallsReachTheClientsOverOneConnection(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);
        $io = $this->tlsClient();

        for ($i = 1; $i <= 3; $i++) {
            $this->assertSame(2, $io->to('r1')->emit("tls-$i", ['n' => $i], 'é')->receivers);
        }

        $this->assertEquals([(object) ['n' => 3], 'é'], $this->argsOf($a['id'], 'tls-3'));
        $this->assertSame(['tls-1', 'tls-2', 'tls-3'], $this->barrier([$a['id']])[$a['id']]);
        $this->assertTrue($io->getTransport()->reusesConnections());
        $this->assertSame(1, $io->getTransport()->connectionCount());
    }

    public function testErrorAnswersOverTls(): void
    {
        try {
            $this->tlsClient()->to('r1')->emit('connect');
            $this->fail('expected INVALID_ARGUMENT');
        } catch (InvalidArgumentException $e) {
            $this->assertFalse($e->isLocal());
            $this->assertSame(['event'], $e->getFields());
        }
    }

    public function testAnUntrustedServerCertificateIsRefused(): void
    {
        $io = new Client(self::$address, certFile: self::$dir . '/client.pem', keyFile: self::$dir . '/client.key');
        try {
            $io->broadcast('x');
            $this->fail('expected the certificate check to fail');
        } catch (UnavailableException $e) {
            $this->assertTrue($e->isLocal());
            $this->assertMatchesRegularExpression('/certificate|SSL/i', $e->getMessage());
        }
    }

    public function testACallWithoutClientCertificateIsRefused(): void
    {
        $io = new Client(self::$address, caFile: self::$dir . '/ca.pem');
        try {
            $io->broadcast('x');
            $this->fail('expected the proxy to refuse the connection');
        } catch (UnavailableException $e) {
            $this->assertTrue($e->isLocal());
        }
    }

    private function tlsClient(): Client
    {
        return new Client(
            self::$address,
            caFile: self::$dir . '/ca.pem',
            certFile: self::$dir . '/client.pem',
            keyFile: self::$dir . '/client.key',
        );
    }

    private function startProxy(): void
    {
        $dir = sys_get_temp_dir() . '/emitgate-php-tls-' . bin2hex(random_bytes(4));
        mkdir($dir);
        self::$dir = $dir;
        $ec = '-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes';
        $this->openssl("req -x509 $ec -keyout $dir/ca.key -out $dir/ca.pem -days 1 -subj /CN=emitgate-test-ca");
        $extensions = ['server' => 'subjectAltName=IP:127.0.0.1', 'client' => 'extendedKeyUsage=clientAuth'];
        foreach ($extensions as $name => $ext) {
            file_put_contents("$dir/$name.ext", $ext . "\n");
            $this->openssl("req $ec -keyout $dir/$name.key -out $dir/$name.csr -subj /CN=$name");
            $this->openssl(
                "x509 -req -in $dir/$name.csr -CA $dir/ca.pem -CAkey $dir/ca.key -CAcreateserial"
                . " -out $dir/$name.pem -days 1 -extfile $dir/$name.ext"
            );
        }

        $script = __DIR__ . '/Support/tls-proxy.js';
        $cmd = ['node', $script, $this->stack->grpc, "$dir/server.key", "$dir/server.pem", "$dir/ca.pem"];
        $io = [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => ['file', "$dir/proxy.log", 'a']];
        $process = proc_open($cmd, $io, $pipes);
        $this->assertIsResource($process);
        self::$proxy = $process;
        self::$proxyStdin = $pipes[0];
        $read = [$pipes[1]];
        $write = $except = null;
        $this->assertSame(1, stream_select($read, $write, $except, 10), 'the proxy did not start');
        $port = (int) fgets($pipes[1]);
        $this->assertGreaterThan(0, $port, (string) @file_get_contents("$dir/proxy.log"));
        self::$address = "https://127.0.0.1:$port";
    }

    private function openssl(string $args): void
    {
        exec('openssl ' . $args . ' 2>&1', $output, $status);
        $this->assertSame(0, $status, implode("\n", $output));
    }
}
