<?php

declare(strict_types=1);

namespace Emitgate\Tests;

use Emitgate\Binary;
use Emitgate\Client;
use Emitgate\Code;
use Emitgate\Exception\InvalidArgumentException;
use Emitgate\Exception\ResourceExhaustedException;
use Emitgate\Proto\V1\Argument;
use Emitgate\Proto\V1\EmitRequest;
use Emitgate\Tests\Support\EndToEndTestCase;
use Emitgate\Transport\CurlTransport;

/**
 * The gRPC-over-curl transport against the real gateway: where the status
 * comes from (trailers, or the headers of a trailers-only answer), large
 * messages, size limits and connection reuse.
 */
final class TransportTest extends EndToEndTestCase
{
    public function testAnOkAnswerCarriesItsStatusInTrailersAfterTheMessage(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);

        $answer = $this->rawEmit((new EmitRequest())->setEvent('raw')->setRooms(['r1']));

        $this->assertSame(200, $answer['status']);
        $this->assertSame(['application/grpc'], $answer['headers']['content-type']);
        $this->assertArrayNotHasKey('grpc-status', $answer['headers']);
        $this->assertSame(['0'], $answer['trailers']['grpc-status']);
        $this->assertSame("\0\0\0\0\x02\x08\x02", $answer['body'], 'one message: receivers = 2');
        $this->assertSame(['raw'], $this->barrier([$a['id']])[$a['id']]);
        // ...and the client reads that status and message.
        $this->assertSame(2, $this->io->to('r1')->emit('raw')->receivers);
    }

    public function testAnErrorAnswerIsTrailersOnlyAndTheClientReadsIt(): void
    {
        $answer = $this->rawEmit((new EmitRequest())->setEvent('connect'));

        $this->assertSame(200, $answer['status']);
        $this->assertSame('', $answer['body']);
        $this->assertSame([], $answer['trailers'], 'no second header block');
        $this->assertSame(['3'], $answer['headers']['grpc-status']);
        $this->assertArrayHasKey('grpc-status-details-bin', $answer['headers']);
        $this->assertStringContainsString('%', $answer['headers']['grpc-message'][0], 'percent-encoded');

        try {
            $this->io->emit('connect');
            $this->fail('expected INVALID_ARGUMENT');
        } catch (InvalidArgumentException $e) {
            $this->assertSame(rawurldecode($answer['headers']['grpc-message'][0]), $e->getStatusMessage());
            $this->assertSame(['event', 'rooms'], $e->getFields());
        }
    }

    public function testLargeArgumentsWithinTheGatewayLimitsArriveIntact(): void
    {
        $a = $this->stack->connect('/', 1, ['r1']);
        $text = str_repeat('é-世界-🎉 ', 30_000); // 450,000 bytes of UTF-8
        $bytes = random_bytes(500_000);

        $this->assertSame(2, $this->io->to('r1')->emit('big', $text)->receivers);
        $this->assertSame(2, $this->io->to('r1')->emit('big-binary', new Binary($bytes))->receivers);

        $this->assertSame([$text], $this->argsOf($a['id'], 'big'));
        $this->assertEquals([self::bin($bytes)], $this->argsOf($a['id'], 'big-binary'));
    }

    public function testAPacketOverTheGatewayPacketLimitIsInvalidArgument(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);

        try {
            $this->io->to('r1')->emit('too-big', new Binary(str_repeat("\0", 1024 * 1024)));
            $this->fail('expected INVALID_ARGUMENT');
        } catch (InvalidArgumentException $e) {
            $this->assertFalse($e->isLocal());
            $this->assertSame(['args'], $e->getFields());
        }
        $this->assertSame([], $this->barrier([$a['id']])[$a['id']]);
    }

    public function testAMessageOverTheClientMaximumFailsBeforeSending(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);

        try {
            $this->io->to('r1')->emit('huge', new Binary(str_repeat('x', CurlTransport::DEFAULT_MAX_MESSAGE_BYTES)));
            $this->fail('expected RESOURCE_EXHAUSTED');
        } catch (ResourceExhaustedException $e) {
            $this->assertSame(Code::RESOURCE_EXHAUSTED, $e->getStatusCode());
            $this->assertTrue($e->isLocal());
        }
        $this->assertSame(2, $this->io->to('r1')->emit('next')->receivers);
        $this->assertSame(['next'], $this->barrier([$a['id']])[$a['id']]);
    }

    public function testCallsShareOneConnectionWhereLibcurlAllows(): void
    {
        $io = new Client($this->stack->grpc);
        for ($i = 0; $i < 5; $i++) {
            $io->to('r1')->emit('reuse');
        }
        try {
            $io->emit('connect');
        } catch (InvalidArgumentException) {
            // An error answer does not break the connection either.
        }
        $io->to('r1')->emit('reuse');

        $transport = $io->getTransport();
        $this->assertSame($transport, $io->to('x')->of('/y')->getTransport(), 'derived clients share the transport');
        $this->assertSame($transport->reusesConnections() ? 1 : 7, $transport->connectionCount());
        $this->assertSame(
            version_compare(curl_version()['version'], '8.0.0', '>='),
            $transport->reusesConnections()
        );

        $io->close();
        $io->to('r1')->emit('after-close');
        $this->assertSame($transport->reusesConnections() ? 2 : 8, $transport->connectionCount());
    }

    public function testAddresses(): void
    {
        foreach (['http://' . $this->stack->grpc, 'http://' . $this->stack->grpc . '/'] as $address) {
            $this->assertSame(2, (new Client($address))->broadcast('addr')->receivers, $address);
        }
        foreach (['', 'localhost', 'ftp://host:1', 'http://host:1/path'] as $bad) {
            try {
                new Client($bad);
                $this->fail("accepted \"$bad\"");
            } catch (\InvalidArgumentException $e) {
                $this->assertStringContainsString('address', $e->getMessage());
            }
        }
    }

    public function testGrpcTimeoutHeaderValues(): void
    {
        $this->assertSame('1u', CurlTransport::grpcTimeout(0.0000001));
        $this->assertSame('300000u', CurlTransport::grpcTimeout(0.3));
        $this->assertSame('5000000u', CurlTransport::grpcTimeout(5.0));
        $this->assertSame('99999999u', CurlTransport::grpcTimeout(99.999999));
        $this->assertSame('100000m', CurlTransport::grpcTimeout(100.0));
        $this->assertSame('100000S', CurlTransport::grpcTimeout(100_000.0));
        $this->assertSame('99999999S', CurlTransport::grpcTimeout(1e12));
    }

    /**
     * Sends one Emit with a fresh curl handle and records the two header
     * blocks (headers before the body, trailers after it) apart.
     *
     * @return array{status: int, headers: array<string, list<string>>,
     *               trailers: array<string, list<string>>, body: string}
     */
    private function rawEmit(EmitRequest $request): array
    {
        $message = $request->serializeToString();
        $answer = ['status' => 0, 'headers' => [], 'trailers' => [], 'body' => ''];
        $bodyStarted = false;
        $curl = curl_init('http://' . $this->stack->grpc . '/emitgate.v1.EmitterService/Emit');
        curl_setopt_array($curl, [
            CURLOPT_HTTP_VERSION => CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE,
            CURLOPT_POST => true,
            CURLOPT_POSTFIELDS => "\0" . pack('N', strlen($message)) . $message,
            CURLOPT_HTTPHEADER => ['content-type: application/grpc', 'te: trailers'],
            CURLOPT_TIMEOUT => 10,
            CURLOPT_HEADERFUNCTION => static function ($ch, string $line) use (&$answer, &$bodyStarted): int {
                if (preg_match('#^HTTP/2 (\d+)#', $line, $m) === 1) {
                    $answer['status'] = (int) $m[1];
                } elseif (str_contains($line, ':')) {
                    [$name, $value] = explode(':', rtrim($line, "\r\n"), 2);
                    $answer[$bodyStarted ? 'trailers' : 'headers'][strtolower($name)][] = trim($value);
                }
                return strlen($line);
            },
            CURLOPT_WRITEFUNCTION => static function ($ch, string $data) use (&$answer, &$bodyStarted): int {
                $bodyStarted = true;
                $answer['body'] .= $data;
                return strlen($data);
            },
        ]);
        $this->assertTrue(curl_exec($curl), curl_error($curl));
        curl_close($curl);
        return $answer;
    }
}
