<?php

declare(strict_types=1);

namespace Emitgate\Tests;

use Emitgate\Client;
use Emitgate\Exception\InvalidArgumentException;
use Emitgate\Exception\UnauthenticatedException;
use Emitgate\Exception\UnavailableException;
use Emitgate\Tests\Support\EndToEndTestCase;
use Emitgate\Tests\Support\Pki;
use Emitgate\Tests\Support\SecuredStack;

/**
 * TLS served by the gateway itself (SecuredStack::tls(): a server
 * certificate for 127.0.0.1 and localhost, no client certificate, API keys),
 * with certificates made by the openssl command for the run. The client
 * verifies the gateway with the `caFile` option.
 */
final class TlsTest extends EndToEndTestCase
{
    protected static function gatewayArgs(): array
    {
        return SecuredStack::tls();
    }

    protected function client(): Client
    {
        return new Client(
            'https://' . $this->stack->grpc,
            apiKey: SecuredStack::secret('full'),
            caFile: Pki::get()->ca,
        );
    }

    public function testCallsOverTlsReachTheClientsOverOneConnection(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);
        $io = $this->client();

        for ($i = 1; $i <= 3; $i++) {
            $this->assertSame(2, $io->to('r1')->emit("tls-$i", ['n' => $i], 'é')->receivers);
        }

        $this->assertEquals([(object) ['n' => 3], 'é'], $this->argsOf($a['id'], 'tls-3'));
        $this->assertSame(['tls-1', 'tls-2', 'tls-3'], $this->barrier([$a['id']])[$a['id']]);
        $this->assertTrue($io->getTransport()->reusesConnections());
        $this->assertSame(1, $io->getTransport()->connectionCount());
    }

    public function testTheServerNameIsVerifiedForAHostName(): void
    {
        $a = $this->stack->connect('/', 1, ['r1']);
        $port = substr((string) strrchr($this->stack->grpc, ':'), 1);
        $io = new Client("https://localhost:$port", apiKey: SecuredStack::secret('full'), caFile: Pki::get()->ca);

        $this->assertSame(2, $io->to('r1')->emit('by-name')->receivers);
        $this->assertSame(['by-name'], $this->barrier([$a['id']])[$a['id']]);
    }

    public function testErrorAnswersOverTls(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);
        try {
            $this->io->to('r1')->emit('connect');
            $this->fail('expected INVALID_ARGUMENT');
        } catch (InvalidArgumentException $e) {
            $this->assertFalse($e->isLocal());
            $this->assertSame(['event'], $e->getFields());
        }
        $noKey = new Client('https://' . $this->stack->grpc, caFile: Pki::get()->ca);
        try {
            $noKey->to('r1')->emit('no-key');
            $this->fail('expected UNAUTHENTICATED');
        } catch (UnauthenticatedException $e) {
            $this->assertFalse($e->isLocal(), 'the gateway answered over TLS');
        }
        $this->assertSame([], $this->barrier([$a['id']])[$a['id']]);
    }

    public function testAnUntrustedServerCertificateIsRefused(): void
    {
        // Without caFile the system CAs are used, and they do not know the test CA.
        $io = new Client('https://' . $this->stack->grpc, apiKey: SecuredStack::secret('full'));
        try {
            $io->broadcast('x');
            $this->fail('expected the certificate check to fail');
        } catch (UnavailableException $e) {
            $this->assertTrue($e->isLocal());
            $this->assertMatchesRegularExpression('/certificate|SSL/i', $e->getMessage());
        }
    }

    public function testAnAddressTheCertificateDoesNotNameIsRefused(): void
    {
        // The same listener through its IPv4-mapped IPv6 address, which the
        // certificate (127.0.0.1, localhost) does not name.
        $port = substr((string) strrchr($this->stack->grpc, ':'), 1);
        $io = new Client("https://[::ffff:127.0.0.1]:$port", caFile: Pki::get()->ca);
        try {
            $io->broadcast('x');
            $this->fail('expected the host name check to fail');
        } catch (UnavailableException $e) {
            $this->assertTrue($e->isLocal());
            $this->assertMatchesRegularExpression('/subject name|host ?name/i', $e->getMessage());
        }
    }

    public function testPlaintextDoesNotReachATlsGateway(): void
    {
        $io = new Client($this->stack->grpc, apiKey: SecuredStack::secret('full'), timeout: 2.0);
        try {
            $io->broadcast('x');
            $this->fail('expected the plaintext call to fail');
        } catch (UnavailableException $e) {
            $this->assertTrue($e->isLocal());
        }
    }
}
