<?php

declare(strict_types=1);

namespace Emitgate\Tests;

use Emitgate\Tests\Support\EndToEndTestCase;

/**
 * A target whose dialect writes to a Redis stream (servers with
 * `@socket.io/redis-streams-adapter`): results carry the id of the stream
 * entry instead of a receiver count.
 */
final class StreamsTest extends EndToEndTestCase
{
    private const ENTRY_ID = '/^\d+-\d+$/';

    protected static function harnessArgs(): array
    {
        return ['--adapter', 'streams'];
    }

    public function testResultsCarryTheStreamEntryId(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);
        $key = 'stream-' . bin2hex(random_bytes(6));

        $first = $this->io->to('r1')->idempotencyKey($key)->emit('streamed', 1);
        $again = $this->io->to('r1')->idempotencyKey($key)->emit('streamed', 1);
        $batch = $this->io->batch()->to('r1')->emit('batched')->broadcast('everyone')->send();

        $this->assertMatchesRegularExpression(self::ENTRY_ID, (string) $first->streamId);
        $this->assertSame(0, $first->receivers, 'a stream has no receiver count');
        $this->assertFalse($first->duplicate);
        $this->assertTrue($again->duplicate);
        $this->assertSame($first->streamId, $again->streamId, 'the first result, repeated');
        $ids = array_map(static fn ($r) => (string) $r->streamId, $batch->results);
        foreach ($ids as $id) {
            $this->assertMatchesRegularExpression(self::ENTRY_ID, $id);
        }
        $this->assertCount(3, array_unique([$first->streamId, ...$ids]), 'one entry per published item');

        $this->assertSame(['streamed', 'batched', 'everyone'], $this->barrier([$a['id']])[$a['id']]);
    }
}
