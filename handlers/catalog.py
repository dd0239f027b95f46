"""Browsing: categories and servicemen."""

import functools
import json

from models.actions import catalog
from models.users import Role

from .base import ANYONE, BaseHandler, endpoint
from .schemas.catalog import (
    CategorySchema,
    CategoryUpdateSchema,
    RatingSchema,
    ServicemanOrderingQuerySchema,
    ServicemanSchema,
)
from .schemas.common import PageQuerySchema, paginate

TAGS = ("catalog",)


class CategoryListHandler(BaseHandler):
    @endpoint(
        operation_id="listCategories",
        roles=ANYONE,
        summary="Active categories",
        response=CategorySchema(),
        paginated=True,
        errors=(422,),
        tags=TAGS,
    )
    async def get(self):
        await self.respond(catalog.active_categories())

    @endpoint(
        operation_id="createCategory",
        roles=Role.ADMIN,
        summary="Create a category",
        body=CategorySchema,
        response=CategorySchema(),
        status=201,
        errors=(400, 401, 403, 422),
        tags=TAGS,
    )
    async def post(self):
        await self.respond(await self.run(catalog.create_category, **self.body))


class CategoryDetailHandler(BaseHandler):
    @endpoint(
        operation_id="updateCategory",
        roles=Role.ADMIN,
        summary="Update a category",
        body=CategoryUpdateSchema,
        response=CategorySchema(),
        errors=(400, 401, 403, 404, 422),
        tags=TAGS,
    )
    async def patch(self, category_id):
        await self.respond(await self.run(catalog.update_category, self.transport, int(category_id), **self.body))

    @endpoint(
        operation_id="deactivateCategory",
        roles=Role.ADMIN,
        summary="Deactivate a category (kept for past bookings)",
        response=CategorySchema(),
        errors=(401, 403, 404),
        tags=TAGS,
    )
    async def delete(self, category_id):
        await self.respond(await self.run(catalog.deactivate_category, self.transport, int(category_id)))


class CategoryServicemenHandler(BaseHandler):
    @endpoint(
        operation_id="listCategoryServicemen",
        roles=ANYONE,
        summary="Approved servicemen offering a category",
        query=ServicemanOrderingQuerySchema,
        response=ServicemanSchema(),
        paginated=True,
        errors=(404, 422),
        tags=TAGS,
    )
    async def get(self, category_id):
        """Served from the process's listing cache while the listing has not changed (handlers/web/listing_cache.py).
        The key holds everything the body depends on: the path and query (its links repeat the query's
        arguments) and the origin its links use."""
        category_id, cache = int(category_id), self.application.settings["listing_cache"]
        self.application.settings["hub"].follow()  # Redis mode: hear other processes' changes from now on
        key = (self.request.uri, self.client_protocol, self.request.host)

        async def build():
            query = catalog.category_servicemen(category_id, self.query["ordering"])
            page = await self.run(
                paginate,
                query,
                self.spec.response,
                self.query,
                self._page_url,
                functools.partial(catalog.listing_cards, category_id=category_id),
            )
            return json.dumps(page).encode()

        self.finish(await cache.fetch(key, build))


class ServicemanDetailHandler(BaseHandler):
    @endpoint(
        operation_id="getServiceman",
        roles=ANYONE,
        summary="A serviceman's public profile",
        response=ServicemanSchema(),
        errors=(404,),
        tags=TAGS,
    )
    async def get(self, serviceman_id):
        await self.respond(await self.run(catalog.serviceman, int(serviceman_id)))


class ServicemanRatingsHandler(BaseHandler):
    @endpoint(
        operation_id="listServicemanRatings",
        roles=ANYONE,
        summary="A serviceman's reviews, newest first",
        query=PageQuerySchema,
        response=RatingSchema(),
        paginated=True,
        errors=(404, 422),
        tags=TAGS,
    )
    async def get(self, serviceman_id):
        await self.respond(await self.run(catalog.serviceman_ratings, int(serviceman_id)))


default_handlers = [
    (r"/api/categories/", CategoryListHandler),
    (r"/api/categories/(?P<category_id>\d+)/", CategoryDetailHandler),
    (r"/api/categories/(?P<category_id>\d+)/servicemen/", CategoryServicemenHandler),
    (r"/api/servicemen/(?P<serviceman_id>\d+)/", ServicemanDetailHandler),
    (r"/api/servicemen/(?P<serviceman_id>\d+)/ratings/", ServicemanRatingsHandler),
]
