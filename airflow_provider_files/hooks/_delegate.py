"""Hook methods that are client methods: declared in one line each, with the client's own signature."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar, overload

from airflow_provider_files.api import AsyncFilesClient, FilesClient
from airflow_provider_files.api.client_base import bound_signature, client_operation

P = ParamSpec("P")
T = TypeVar("T")


class _HasClient(Protocol):
    @property
    def client(self) -> FilesClient: ...


class _OpensAsyncClient(Protocol):
    async def get_async_client(self) -> AsyncFilesClient: ...


def _named(call: Callable[..., Any], method: Callable[..., Any]) -> None:
    call.__name__ = call.__qualname__ = getattr(method, "__name__", "operation")
    call.__doc__ = method.__doc__
    call.__signature__ = bound_signature(method)  # type: ignore[attr-defined]


class client_method(Generic[P, T]):
    """``get_file = client_method(FilesClient.retrieve_file)``: the hook's ``client`` does the call.

    :param method: a :class:`~airflow_provider_files.api.FilesClient` method (or table operation).
    """

    def __init__(self, method: Callable[Concatenate[FilesClient, P], T]) -> None:
        self._method = method
        self.__doc__ = method.__doc__

    @overload
    def __get__(self, hook: None, owner: type[Any]) -> client_method[P, T]: ...

    @overload
    def __get__(self, hook: _HasClient, owner: type[Any]) -> Callable[P, T]: ...

    def __get__(self, hook: _HasClient | None, owner: type[Any]) -> client_method[P, T] | Callable[P, T]:
        if hook is None:
            return self
        method = self._method

        def call(*args: P.args, **kwargs: P.kwargs) -> T:
            return method(hook.client, *args, **kwargs)

        _named(call, method)
        return call


class async_client_method(Generic[P, T]):
    """``get_batch = async_client_method(AsyncFilesClient.retrieve_batch)``: one client per call, closed after.

    :param method: an :class:`~airflow_provider_files.api.AsyncFilesClient` coroutine method.
    """

    @overload
    def __init__(self: async_client_method[P, T], method: client_operation[P, T]) -> None: ...

    @overload
    def __init__(self, method: Callable[Concatenate[AsyncFilesClient, P], Awaitable[T]]) -> None: ...

    def __init__(self, method: Callable[..., Any]) -> None:
        self._method: Callable[Concatenate[AsyncFilesClient, P], Awaitable[T]] = method
        self.__doc__ = method.__doc__

    @overload
    def __get__(self, hook: None, owner: type[Any]) -> async_client_method[P, T]: ...

    @overload
    def __get__(self, hook: _OpensAsyncClient, owner: type[Any]) -> Callable[P, Coroutine[Any, Any, T]]: ...

    def __get__(
        self, hook: _OpensAsyncClient | None, owner: type[Any]
    ) -> async_client_method[P, T] | Callable[P, Coroutine[Any, Any, T]]:
        if hook is None:
            return self
        method = self._method

        async def call(*args: P.args, **kwargs: P.kwargs) -> T:
            async with await hook.get_async_client() as client:
                return await method(client, *args, **kwargs)

        _named(call, method)
        return call
