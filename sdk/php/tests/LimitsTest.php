<?php

declare(strict_types=1);

namespace Emitgate\Tests;

use Emitgate\Client;
use Emitgate\Code;
use Emitgate\Exception\DeadlineExceededException;
use Emitgate\Exception\InvalidArgumentException;
use Emitgate\Exception\ResourceExhaustedException;
use Emitgate\Exception\UnavailableException;
use Emitgate\Tests\Support\EndToEndTestCase;
use Emitgate\Tests\Support\LimitedStack;

/**
 * Errors that need other gateway settings: small limits, a target whose
 * Redis is down and one whose Redis never answers.
 */
final class LimitsTest extends EndToEndTestCase
{
    protected static function gatewayArgs(): array
    {
        return LimitedStack::gatewayArgs();
    }

    public function testABatchOverALowerGatewayLimitIsResentInSmallerChunks(): void
    {
        // The client starts at 1000 items per call; the gateway refuses the
        // first call (publishing nothing), the client resends at the limit
        // the gateway states and keeps it for later batches.
        $a = $this->stack->connect('/', 0, ['r1']);
        $batch = $this->io->batch();
        for ($i = 0; $i < 12; $i++) {
            $batch->to('r1')->emit("item-$i");
        }
        $result = $batch->send();
        $this->assertSame(12, $result->published);
        $this->assertSame(3, $result->requests, '5 + 5 + 2 items after the refused call');

        $again = $this->io->of('/')->batch();
        for ($i = 12; $i < 18; $i++) {
            $again->to('r1')->emit("item-$i");
        }
        $this->assertSame(2, $again->send()->requests, 'the derived client knows the limit');

        $names = array_map(static fn (int $i): string => "item-$i", range(0, 17));
        $this->assertSame($names, $this->barrier([$a['id']])[$a['id']]);
    }

    public function testAPublisherResendsInChunksOfALowerGatewayLimit(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);
        $io = new Client($this->stack->grpc);
        $publisher = $io->publisher();
        $handles = [];
        for ($i = 0; $i < 12; $i++) {
            $handles[] = $publisher->to('r1')->emit("item-$i");
        }
        $publisher->flush();

        foreach ($handles as $handle) {
            $this->assertSame(2, $handle->get()->receivers);
        }
        $this->assertSame(LimitedStack::MAX_BATCH_ITEMS, $io->getBatchLimit()->maxItems, 'the client learnt the limit');
        for ($i = 12; $i < 17; $i++) {
            $handles[] = $publisher->to('r1')->emit("item-$i");
        }
        $this->assertTrue($handles[16]->isDone(), 'a batch of the learnt size is full');
        $names = array_map(static fn (int $i): string => "item-$i", range(0, 16));
        $this->assertSame($names, $this->barrier([$a['id']])[$a['id']]);
    }

    public function testAnAtomicBatchOverTheLimitIsRefusedWhole(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);
        $batch = $this->io->batch()->atomic();
        for ($i = 0; $i <= LimitedStack::MAX_BATCH_ITEMS; $i++) {
            $batch->to('r1')->emit("item-$i");
        }

        try {
            $batch->send();
            $this->fail('expected INVALID_ARGUMENT');
        } catch (InvalidArgumentException $e) {
            $this->assertFalse($e->isLocal());
            $this->assertSame(['items'], $e->getFields());
        }
        $this->assertSame([], $this->barrier([$a['id']])[$a['id']]);
    }

    public function testAWholeCallFailureKeepsTheEarlierChunksPublished(): void
    {
        $io = new Client($this->stack->grpc, maxMessageBytes: 4096, maxBatchItems: LimitedStack::MAX_BATCH_ITEMS);
        $a = $this->stack->connect('/', 0, ['r1']);
        $batch = $io->batch();
        for ($i = 0; $i < 7; $i++) {
            $batch->to('r1')->emit("item-$i");
        }
        // The second call is over the client's message size: it fails as a whole.
        $batch->to('r1')->emit('lost', str_repeat('x', 8192));

        try {
            $batch->send();
            $this->fail('expected RESOURCE_EXHAUSTED');
        } catch (ResourceExhaustedException $e) {
            $this->assertTrue($e->isLocal());
        }
        $partial = $batch->result();
        $this->assertNotNull($partial);
        $this->assertSame(5, $partial->published);
        $this->assertCount(5, $partial->results);
        $names = array_map(static fn (int $i): string => "item-$i", range(0, 4));
        $this->assertSame($names, $this->barrier([$a['id']])[$a['id']]);
    }

    public function testATargetWhoseRedisIsDownIsUnavailable(): void
    {
        $started = microtime(true);
        try {
            $this->io->target('down')->to('r1')->emit('x');
            $this->fail('expected UNAVAILABLE');
        } catch (UnavailableException $e) {
            $this->assertSame(Code::UNAVAILABLE, $e->getStatusCode());
            $this->assertSame(14, $e->getCode());
            $this->assertFalse($e->isLocal(), 'the gateway answers UNAVAILABLE');
            $this->assertTrue($e->isRetryable());
            $this->assertStringContainsString('down', $e->getStatusMessage());
        }
        $this->assertLessThan(LimitedStack::REDIS_TIMEOUT_MS / 1000, microtime(true) - $started);
        $this->assertSame(2, $this->io->to('r1')->emit('default-still-works')->receivers);
    }

    public function testADeadlineShorterThanTheGatewayIsDeadlineExceeded(): void
    {
        // The gateway gives up a little before the deadline it was sent
        // (grpc-timeout) and answers DEADLINE_EXCEEDED itself.
        $started = microtime(true);
        try {
            $this->io->target('stalled')->timeout(1.0)->to('r1')->emit('x');
            $this->fail('expected DEADLINE_EXCEEDED');
        } catch (DeadlineExceededException $e) {
            $this->assertSame(Code::DEADLINE_EXCEEDED, $e->getStatusCode());
            $this->assertSame(4, $e->getCode());
            $this->assertFalse($e->isLocal(), 'the gateway answered: ' . $e->getMessage());
            $this->assertStringContainsString('deadline', $e->getStatusMessage());
        }
        $elapsed = microtime(true) - $started;
        $this->assertGreaterThanOrEqual(0.8, $elapsed);
        $this->assertLessThan(1.0, $elapsed);
    }

    public function testAServerThatNeverAnswersIsALocalDeadlineExceeded(): void
    {
        // A socket that accepts connections (in the kernel backlog) and never
        // answers, so only the client's own deadline ends the call.
        $silent = stream_socket_server('tcp://127.0.0.1:0');
        $this->assertIsResource($silent);
        $io = new Client((string) stream_socket_get_name($silent, false), timeout: 0.3);

        $started = microtime(true);
        try {
            $io->to('r1')->emit('x');
            $this->fail('expected DEADLINE_EXCEEDED');
        } catch (DeadlineExceededException $e) {
            $this->assertTrue($e->isLocal());
            $this->assertTrue($e->isRetryable());
        }
        $elapsed = microtime(true) - $started;
        fclose($silent);
        $this->assertGreaterThanOrEqual(0.29, $elapsed);
        $this->assertLessThan(0.9, $elapsed);
    }

    public function testAMessageOverTheGatewayLimitFailsCleanly(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);
        $io = new Client($this->stack->grpc, maxMessageBytes: null);

        try {
            $io->to('r1')->emit('too-big', new \Emitgate\Binary(str_repeat("\x07", LimitedStack::MAX_MESSAGE_BYTES)));
            $this->fail('expected the gateway to refuse the message');
        } catch (ResourceExhaustedException | InvalidArgumentException $e) {
            // The gateway answers with a status and resets the stream while
            // the request is still being sent; libcurl < 8 drops that status,
            // which the transport reports as RESOURCE_EXHAUSTED.
            $this->assertContains($e->getStatusCode(), [Code::RESOURCE_EXHAUSTED, Code::OUT_OF_RANGE]);
        }
        // The same client still works afterwards, and nothing was delivered.
        $this->assertSame(2, $io->to('r1')->emit('after')->receivers);
        $this->assertSame(['after'], $this->barrier([$a['id']])[$a['id']]);
    }
}
