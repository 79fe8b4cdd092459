<?php

declare(strict_types=1);

namespace Emitgate\Tests;

use Emitgate\Code;
use Emitgate\Exception\DeadlineExceededException;
use Emitgate\Exception\EmitgateException;
use Emitgate\Exception\InternalException;
use Emitgate\Exception\InvalidArgumentException;
use Emitgate\Exception\NotFoundException;
use Emitgate\Exception\PermissionDeniedException;
use Emitgate\Exception\ResourceExhaustedException;
use Emitgate\Exception\UnauthenticatedException;
use Emitgate\Exception\UnavailableException;
use PHPUnit\Framework\TestCase;

/**
 * The status code → exception class table for every code, including those
 * the gateway never answers. That each class is raised for a real answer is
 * proven by the end-to-end tests (ErrorsTest, AuthTest, LimitsTest,
 * OverloadTest).
 */
final class ExceptionTest extends TestCase
{
    public function testEveryCodeMapsToItsFamily(): void
    {
        $expected = [
            InvalidArgumentException::class => [Code::INVALID_ARGUMENT, Code::FAILED_PRECONDITION, Code::OUT_OF_RANGE],
            NotFoundException::class => [Code::NOT_FOUND],
            UnauthenticatedException::class => [Code::UNAUTHENTICATED],
            PermissionDeniedException::class => [Code::PERMISSION_DENIED],
            ResourceExhaustedException::class => [Code::RESOURCE_EXHAUSTED],
            UnavailableException::class => [Code::UNAVAILABLE, Code::ABORTED],
            DeadlineExceededException::class => [Code::DEADLINE_EXCEEDED, Code::CANCELLED],
            InternalException::class => [
                Code::UNKNOWN, Code::ALREADY_EXISTS, Code::UNIMPLEMENTED, Code::INTERNAL, Code::DATA_LOSS,
            ],
        ];
        $seen = 0;
        foreach ($expected as $class => $codes) {
            foreach ($codes as $code) {
                $e = EmitgateException::fromStatus($code, 'm');
                $this->assertInstanceOf($class, $e, $code->name);
                $this->assertSame($code->value, $e->getCode());
                $this->assertSame($code->name . ': m', $e->getMessage());
                $seen++;
            }
        }
        $this->assertSame(count(Code::cases()) - 1, $seen, 'every code but OK');
    }

    public function testUnknownNumericCodesAreUnknown(): void
    {
        $this->assertSame(Code::UNKNOWN, Code::fromInt(99));
        $this->assertSame(Code::UNAVAILABLE, Code::fromInt(14));
    }
}
