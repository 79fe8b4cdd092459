<?php

declare(strict_types=1);

namespace Emitgate\Tests;

use Emitgate\Binary;
use Emitgate\Client;
use Emitgate\Exception\InvalidArgumentException;
use Emitgate\Internal\Requests;
use Emitgate\Internal\Scope;
use Emitgate\Internal\Texts;
use Emitgate\Internal\Wire;
use Emitgate\JsonObject;
use Emitgate\Proto\V1\BatchEmitRequest;
use Emitgate\Proto\V1\BatchEmitResponse;
use Emitgate\Proto\V1\BatchItem;
use Emitgate\Proto\V1\FieldViolation;
use Emitgate\Proto\V1\ItemResult;
use Emitgate\RawJson;
use PHPUnit\Framework\TestCase;

/**
 * The Publisher's hand-written wire form against the generated classes:
 * the same bytes for every kind of scope and argument, and the same
 * answers read back.
 */
final class WireTest extends TestCase
{
    /**
     * @return iterable<string, array{Scope, bool, string, list<mixed>}>
     */
    public static function items(): iterable
    {
        $payload = ['id' => 1042, 'kind' => 'comment', 'unread' => 3, 'score' => 1.0, 'tags' => ['a', 'é']];
        yield 'one room, an object' => [new Scope(rooms: ['user:1']), false, 'notification', [$payload]];
        yield 'every scope field' => [
            new Scope('eu', '/admin', ['a', 'b', 'ü'], ['muted'], true, false, 'key-1'),
            false,
            'chat',
            [1, -2, 'x', null, true, [], new JsonObject(), 2.5],
        ];
        yield 'compress only' => [new Scope(rooms: ['r'], compress: true), false, 'e', []];
        yield 'binary and big integers' => [
            new Scope(rooms: ['r']),
            false,
            'bin',
            [new Binary("\x00\xff"), ['nested' => new Binary('b')], PHP_INT_MAX, new RawJson('{"a":1}')],
        ];
        yield 'a broadcast' => [new Scope('t', '/', [], ['x', 'y'], true, null, 'k'), true, 'news', ['hi']];
        yield 'a long event and room' => [new Scope(rooms: [str_repeat('r', 300)]), false, str_repeat('e', 200), []];
        yield 'an empty event' => [new Scope(rooms: ['r']), false, '', ['']];
    }

    /**
     * @dataProvider items
     * @param list<mixed> $args
     */
    public function testItemsAreTheBytesOfTheGeneratedClasses(
        Scope $scope,
        bool $broadcast,
        string $event,
        array $args
    ): void {
        $item = new BatchItem();
        if ($broadcast) {
            $item->setBroadcast(Requests::broadcast($scope, $event, $args));
        } else {
            $item->setEmit(Requests::emit($scope, $event, $args));
        }
        $expected = (new BatchEmitRequest())->setItems([$item, $item])->serializeToString();

        $one = Wire::item(Wire::scopeBytes($scope, $broadcast), $broadcast, $event, $args);

        $this->assertSame(bin2hex($expected), bin2hex($one . $one));
    }

    public function testArgumentErrorsAreTheOnesOfASingleCall(): void
    {
        $scope = new Scope(rooms: ['r']);
        $cases = [[[1, NAN], 'args[1]'], [["\xff"], 'args[0]'], [[['k' => fopen('php://memory', 'r')]], 'args[0].k']];
        foreach ($cases as [$args, $field]) {
            try {
                Wire::item(Wire::scopeBytes($scope, false), false, 'e', $args);
                $this->fail("expected an error on $field");
            } catch (InvalidArgumentException $e) {
                $this->assertTrue($e->isLocal());
                $this->assertSame([$field], $e->getFields());
            }
        }
        try {
            Wire::item(Wire::scopeBytes($scope, false), false, "\xc3", []);
            $this->fail('expected an error on event');
        } catch (InvalidArgumentException $e) {
            $this->assertSame(['event'], $e->getFields());
        }
    }

    public function testAnswersAreReadAsTheGeneratedClassesRead(): void
    {
        $response = (new BatchEmitResponse())->setResults([
            (new ItemResult())->setReceivers(3),
            (new ItemResult())->setReceivers(300)->setDuplicate(true)->setStreamId('1-0'),
            (new ItemResult())->setCode(3)->setMessage('bad')->setViolations([
                (new FieldViolation())->setField('items[2].emit.event')->setDescription('reserved'),
            ]),
            new ItemResult(),
        ])->setPublished(3)->setFailed(1)->setReceivers(303);

        $results = Wire::results($response->serializeToString(), 4);

        $this->assertSame([3, 300, 0, 0], array_map(static fn ($r) => $r->receivers, $results));
        $this->assertSame([false, true, false, false], array_map(static fn ($r) => $r->duplicate, $results));
        $this->assertSame([null, '1-0', null, null], array_map(static fn ($r) => $r->streamId, $results));
        $this->assertSame('INVALID_ARGUMENT', $results[2]->code->name);
        $this->assertSame('bad', $results[2]->message);
        $this->assertSame('items[2].emit.event', $results[2]->violations[0]->field);
        $this->assertTrue($results[3]->isOk());
    }

    public function testAnAnswerWithTooFewResultsIsAnError(): void
    {
        $bytes = (new BatchEmitResponse())->setResults([new ItemResult()])->serializeToString();
        $this->expectException(\Emitgate\Exception\InternalException::class);
        Wire::results($bytes, 2);
    }

    public function testRoomNamesAreCheckedAndDeduplicated(): void
    {
        $this->assertSame(['a', 'b'], Texts::rooms([], [['a', 'b', 'a']], 'rooms'));
        $this->assertSame(['a', 'b', 'c'], Texts::rooms(['a'], ['b', ['a', 'c']], 'rooms'));
        // Two halves of one UTF-8 character are two invalid names, not one valid one.
        foreach ([[["\xc3", "\xa9"]], [['ok', 7]], ["\xff"]] as $rooms) {
            try {
                Texts::rooms([], $rooms, 'rooms');
                $this->fail('accepted ' . json_encode($rooms, JSON_INVALID_UTF8_SUBSTITUTE));
            } catch (InvalidArgumentException $e) {
                $this->assertSame(['rooms'], $e->getFields());
            }
        }
    }

    public function testAPublisherFromAKeyedClientIsRefused(): void
    {
        $this->expectException(\LogicException::class);
        (new Client('127.0.0.1:1'))->idempotencyKey('k')->publisher();
    }
}
