<?php

declare(strict_types=1);

namespace Emitgate\Tests;

use Emitgate\Client;
use Emitgate\Code;
use Emitgate\Exception\UnavailableException;
use Emitgate\Tests\Support\EndToEndTestCase;
use Emitgate\Tests\Support\Gateway;

/**
 * The Publisher with a gateway that is down: events without idempotency
 * keys get UNAVAILABLE, events with keys are retried with backoff and
 * delivered once the gateway is back. The test runs its own gateway (on
 * the stack's Redis, so the stack's Socket.IO servers and clients see its
 * events) to stop and restart it.
 */
final class PublisherRetryTest extends EndToEndTestCase
{
    private ?Gateway $gateway = null;

    protected function tearDown(): void
    {
        $this->gateway?->stop();
        parent::tearDown();
    }

    public function testUnkeyedEventsGetUnavailableAndKeyedOnesAreRetriedUntilTheGatewayIsBack(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);
        $this->gateway = Gateway::start($this->stack->redisUrl);
        $io = new Client($this->gateway->address);
        $publisher = $io->publisher();
        $this->assertTrue($publisher->to('r1')->emit('while-up')->get()->isOk());

        $this->gateway->stop();

        $unkeyed = [$publisher->to('r1')->emit('lost-1'), $publisher->to('r1')->emit('lost-2')];
        $started = microtime(true);
        $publisher->flush();
        $this->assertLessThan(0.1, microtime(true) - $started, 'no retry without keys');
        foreach ($unkeyed as $handle) {
            $error = $handle->getError();
            $this->assertInstanceOf(UnavailableException::class, $error);
            $this->assertSame(Code::UNAVAILABLE, $error->getStatusCode());
        }

        $run = bin2hex(random_bytes(6));
        $keyed = [];
        for ($i = 0; $i < 3; $i++) {
            $keyed[] = $publisher->to('r1')->idempotencyKey("retry-$run-$i")->emit("kept-$i");
        }
        // The gateway comes back while the publisher backs off (attempts at
        // 0, 0.1, 0.3, 0.7 and 1.5 s).
        $this->gateway->restartAfter(0.4);
        $started = microtime(true);
        $publisher->flush();

        $this->assertGreaterThan(0.1, microtime(true) - $started, 'the first attempt failed and was retried');
        foreach ($keyed as $handle) {
            $this->assertSame(2, $handle->get()->receivers);
            $this->assertFalse($handle->get()->duplicate);
        }
        $this->assertSame(
            ['while-up', 'kept-0', 'kept-1', 'kept-2'],
            $this->barrier([$a['id']])[$a['id']],
            'each keyed event once, the unkeyed ones never'
        );
    }

    public function testAMixedBatchIsNotRetried(): void
    {
        $this->gateway = Gateway::start($this->stack->redisUrl);
        $publisher = (new Client($this->gateway->address))->publisher();
        $this->gateway->stop();

        $keyed = $publisher->to('r1')->idempotencyKey('mixed-' . bin2hex(random_bytes(6)))->emit('k');
        $unkeyed = $publisher->to('r1')->emit('u');
        $started = microtime(true);
        $publisher->flush();

        $this->assertLessThan(0.1, microtime(true) - $started);
        $this->assertInstanceOf(UnavailableException::class, $keyed->getError());
        $this->assertInstanceOf(UnavailableException::class, $unkeyed->getError());
    }
}
