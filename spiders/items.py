"""Items of the findartinfo crawl."""
import scrapy


class ArtistItem(scrapy.Item):
    artist_id = scrapy.Field()
    name = scrapy.Field()
    birth_year = scrapy.Field()
    death_year = scrapy.Field()
    nationality = scrapy.Field()
    url = scrapy.Field()


class SaleItem(scrapy.Item):
    # as found (raw text), then parsed by CleanPipeline
    sale_id = scrapy.Field()
    artist_id = scrapy.Field()
    artist = scrapy.Field()
    artist_birth = scrapy.Field()
    artist_death = scrapy.Field()
    artist_nationality = scrapy.Field()
    title = scrapy.Field()
    date_sold = scrapy.Field()
    size = scrapy.Field()
    medium = scrapy.Field()
    signed = scrapy.Field()
    stamped = scrapy.Field()
    inscribed = scrapy.Field()
    dating = scrapy.Field()
    lot_number = scrapy.Field()
    auction_house = scrapy.Field()
    estimate = scrapy.Field()
    price = scrapy.Field()
    price_with_premium = scrapy.Field()
    image_url = scrapy.Field()
    page_url = scrapy.Field()
    listing = scrapy.Field()          # the listing row's cells (for the cross-check)
    parsed = scrapy.Field()           # CleanPipeline's result
    image = scrapy.Field()            # ImagePipeline's result (record image fields)
